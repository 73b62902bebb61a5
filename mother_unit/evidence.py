"""Evidence of interventions (MID Annex I 8.2): the logbook and the event counter.

Every part of the mother unit that sees something legally relevant calls
:meth:`Evidence.record`; the entry is on disk (fsync) before the call returns.
Rejected messages are too many to log one by one (a flood would fill the disk:
A_WEB_DOS), so they are summarised per reason at most once per interval (T6).
The logbook's signed checkpoint is published retained on ``mother/checkpoint``
so any party can later check the log's consistency.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import structlog

from mother_unit.core import Core
from security_module.checkpoint import NoteSigner
from security_module.logbook import Logbook, LogEntry
from wire.client import LinkDown

log = structlog.get_logger()


class Evidence:
    def __init__(
        self, core: Core, logbook: Logbook, signer: NoteSigner, *, summary_interval_s: float = 10.0
    ) -> None:
        self.core = core
        self.logbook = logbook
        self.signer = signer
        self.summary_interval_s = summary_interval_s
        self._summarised: Counter[str] = Counter()
        self._checkpointed_size = -1
        self._sync()

    def _sync(self) -> None:
        self.core.event_counter = self.logbook.event_counter
        self.core.link.detail.update(
            logbook_size=self.logbook.size, event_counter=self.logbook.event_counter
        )

    def record(
        self, type_: str, data: Mapping[str, Any] | None = None, *, intervention: bool | None = None
    ) -> LogEntry:
        """Append a logbook entry; an intervention raises the event counter (MID 8.2)."""
        entry = self.logbook.append(type_, dict(data or {}), legally_relevant=intervention)
        log.info(
            "logbook_entry",
            type=type_,
            index=entry.index,
            event_counter=entry.event_counter,
            **(data or {}),
        )
        self._sync()
        self.core.changed()
        return entry

    def summarise_rejections(self) -> None:
        """One entry for what was rejected since the last summary (T6, rate-limited)."""
        counters = self.core.link.counters
        now = Counter(
            {k.split(".", 1)[1]: v for k, v in counters.items() if k.startswith("rejected.")}
        )
        delta = now - self._summarised
        if delta:
            self.record(
                "rejections_summary",
                {"since_last": dict(delta), "total": sum(now.values())},
                intervention=False,
            )
            self._summarised = now

    async def publish_checkpoint(self) -> None:
        if self.logbook.size == self._checkpointed_size:
            return
        signed = await asyncio.to_thread(self.logbook.checkpoint, self.signer)
        self._checkpointed_size = signed.checkpoint.size
        await self.core.link.publish(self.core.topics.checkpoint, signed.note.encode(), retain=True)

    async def loop(self) -> None:
        next_summary = time.monotonic() + self.summary_interval_s
        while True:
            await asyncio.sleep(1.0)
            if time.monotonic() >= next_summary:
                self.summarise_rejections()
                next_summary = time.monotonic() + self.summary_interval_s
            try:
                await self.publish_checkpoint()
            except LinkDown:
                await self.core.link.connected.wait()
