"""What every part of the mother unit shares: the link, limits, state, counters.

The sensor, processing and storage links are separate modules that each take
an :class:`Core`; they never call each other directly but hand results on
through the callbacks the application wires up (``app.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog

from mother_unit.state import InstrumentStatus
from wire.client import MqttLink
from wire.topics import Topics

log = structlog.get_logger()


@dataclass(frozen=True)
class Limits:
    """Bounds and timeouts; T7 and buffer sizes are legally relevant parameters."""

    max_batch: int = 200
    conversion_queue: int = 10_000
    # Conversion requests awaiting their result. Few: samples arriving meanwhile gather
    # into the next request, so fewer signed results to verify and fewer messages; 8
    # made one small request per sample or two (docs/performance.md).
    inflight_requests: int = 2
    processing_timeout_s: float = 2.0
    record_buffer: int = 20_000  # L8: records not yet acknowledged by the store
    storage_timeout_s: float = 2.0
    t7_max_ms: float = 2000.0  # from the type approval (legally relevant parameter)
    t7_reject: bool = False  # late samples: flagged (False) or not used (True)
    gap_timeout_s: float = 30.0  # a present sensor that does not retransmit within this
    kat_period_s: float = 30.0  # fixed test cases of the remote processing (OIML 2018 §4.3)


@dataclass
class Core:
    link: MqttLink
    limits: Limits = field(default_factory=Limits)
    status: InstrumentStatus = field(default_factory=InstrumentStatus)
    event_counter: int = 0
    state_changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def topics(self) -> Topics:
        return self.link.topics

    def count(self, name: str, n: int = 1) -> None:
        self.link.counters[name] += n

    def reject(self, reason: str, **fields: object) -> None:
        """Count and log a message that must not be used (T6)."""
        self.count("rejected")
        self.count(f"rejected.{reason}")
        log.warning("message_rejected", reason=reason, **fields)

    def changed(self) -> None:
        """The state or its reasons changed: publish soon."""
        self.link.detail.update(state=self.status.state, event_counter=self.event_counter)
        self.state_changed.set()
