"""The observer: what anybody subscribed to the instrument's public topics sees, timestamped.

It records, with the monotonic time of arrival, every retained instrument state
(and its transitions), every indication, every component status, command reply
and logbook checkpoint. Scenarios read evidence from here and never from a
component's memory. It subscribes to exact topics, not ``#``: a flood on the
sensor topics must not flood the observer's memory.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import aiomqtt

from wire.client import NODELAY
from wire.codec import RejectedPayload, decode
from wire.messages import CommandReply, ComponentStatus, Indication, InstrumentState
from wire.settings import BrokerAddress
from wire.topics import Topics

T = TypeVar("T")


@dataclass(frozen=True)
class Seen(Generic[T]):
    at: float  # time.monotonic() of arrival
    message: T


@dataclass
class Observer:
    address: BrokerAddress
    topics: Topics
    states: list[Seen[InstrumentState]] = field(default_factory=list)
    indications: list[Seen[Indication]] = field(default_factory=list)
    replies: list[Seen[CommandReply]] = field(default_factory=list)
    checkpoints: list[Seen[str]] = field(default_factory=list)
    statuses: dict[str, ComponentStatus] = field(default_factory=dict)
    status_log: list[Seen[ComponentStatus]] = field(default_factory=list)
    ignored: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def _filters(self) -> list[str]:
        t = self.topics
        return [t.status_all, t.state, t.indication, t.command_reply, t.checkpoint]

    async def run(self) -> None:
        """Observe until cancelled (run it as a task of the trial's TaskGroup)."""
        async with aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            identifier=f"scenario-observer-{os.getpid()}-{secrets.token_hex(3)}",
            socket_options=NODELAY,
            timeout=10,
        ) as client:
            for topic in self._filters():
                await client.subscribe(topic, qos=1)
            self.connected.set()
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
                await self.feed(message.topic.value, bytes(payload))

    async def feed(self, topic: str, payload: bytes) -> None:
        now = time.monotonic()
        t = self.topics
        try:
            if topic == t.state:
                self.states.append(Seen(now, decode(InstrumentState, payload, topic)))
            elif topic == t.indication:
                self.indications.append(Seen(now, decode(Indication, payload, topic)))
            elif topic == t.command_reply:
                self.replies.append(Seen(now, decode(CommandReply, payload, topic)))
            elif topic == t.checkpoint:
                self.checkpoints.append(Seen(now, payload.decode("utf-8", "replace")))
            else:
                status = decode(ComponentStatus, payload, topic)
                self.statuses[status.component_id] = status
                self.status_log.append(Seen(now, status))
        except RejectedPayload:
            self.ignored += 1  # a forged or malformed message on a public topic
            return
        async with self._changed:
            self._changed.notify_all()

    # -- waiting -----------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """True as soon as ``predicate()`` holds; False after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(predicate)
        except TimeoutError:
            return predicate()
        return True

    async def next_state(self, timeout_s: float = 3.0) -> InstrumentState | None:
        """The first state published after now (the mother unit publishes at each heartbeat)."""
        n = len(self.states)
        await self.wait_for(lambda: len(self.states) > n, timeout_s)
        return self.states[-1].message if len(self.states) > n else None

    # -- reading -----------------------------------------------------------------------

    @property
    def state(self) -> InstrumentState | None:
        return self.states[-1].message if self.states else None

    def counter(self, name: str) -> int:
        """A counter of the newest instrument state (``rejected.<reason>`` for rejections)."""
        state = self.state
        if state is None:
            return 0
        if name.startswith("rejected."):
            return state.rejected.get(name.split(".", 1)[1], 0)
        return state.counters.get(name, 0)

    def status_counter(self, component_id: str, name: str) -> int:
        status = self.statuses.get(component_id)
        return 0 if status is None else status.counters.get(name, 0)

    def first_state_after(
        self, since: float, predicate: Callable[[InstrumentState], bool]
    ) -> Seen[InstrumentState] | None:
        return next((s for s in self.states if s.at >= since and predicate(s.message)), None)

    def indications_after(self, since: float) -> list[Indication]:
        return [i.message for i in self.indications if i.at >= since]

    def reply_to(self, command_id: str) -> CommandReply | None:
        return next((r.message for r in self.replies if r.message.command_id == command_id), None)

    def transitions(self) -> list[Seen[InstrumentState]]:
        """States whose name or reasons differ from the one before."""
        out: list[Seen[InstrumentState]] = []
        for seen in self.states:
            last = out[-1].message if out else None
            if last is None or (last.state, last.reasons) != (
                seen.message.state,
                seen.message.reasons,
            ):
                out.append(seen)
        return out
