"""What the supervisor knows about the running components: their retained status messages.

Every component publishes a retained :class:`ComponentStatus` on
``mi/<instrument>/status/<component-id>`` (online on connect and at every
heartbeat, offline on a clean stop or through its Last Will), and the mother
unit a retained :class:`InstrumentState`. The board keeps the newest of each,
ignoring messages from processes that are not ours (a retained message of an
earlier run on an external broker names another pid).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiomqtt

from wire.client import NODELAY
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus, InstrumentState
from wire.settings import BrokerAddress
from wire.topics import Topics


@dataclass(frozen=True)
class Row:
    """One line of the status panel."""

    component_id: str
    pid: int | None
    online: bool
    software_id: str | None
    counters: Mapping[str, int]
    state: str | None


# Counters worth a glance per component kind; every component also counts ``rejected``.
KEY_COUNTERS: Mapping[str, tuple[str, ...]] = {
    "remote_sensor": ("sent",),
    "mother_unit": ("accepted", "converted", "records_created", "records_acked"),
    "remote_processing": ("conversions",),
    "remote_storage": ("records_stored",),
}


class StatusBoard:
    """The newest status of each expected component, fed from the broker."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self.expected: dict[str, int] = {}  # component id -> pid of the process we started
        self.statuses: dict[str, ComponentStatus] = {}
        self.state: InstrumentState | None = None
        self.ignored = 0
        self._changed = asyncio.Condition()

    def expect(self, component_id: str, pid: int) -> None:
        self.expected[component_id] = pid

    async def feed(self, topic: str, payload: bytes) -> None:
        """Take one message from ``status/+`` or ``mother/state``."""
        try:
            if topic == self.topics.state:
                self.state = decode(InstrumentState, payload, topic)
            else:
                self._take(decode(ComponentStatus, payload, topic))
        except RejectedPayload:
            self.ignored += 1  # a foreign or malformed message must not confuse the panel
            return
        async with self._changed:
            self._changed.notify_all()

    def _take(self, status: ComponentStatus) -> None:
        cid = status.component_id
        if cid not in self.expected or status.pid != self.expected[cid]:
            self.ignored += 1
            return
        current = self.statuses.get(cid)
        # The Last Will was composed at connect time: it is older than the last
        # heartbeat, and its counters are zeros. Keep the newest report instead.
        if current is not None and status.time < current.time:
            if not status.online:
                self.statuses[cid] = current.model_copy(update={"online": False})
            return
        self.statuses[cid] = status

    def is_online(self, component_id: str) -> bool:
        status = self.statuses.get(component_id)
        return status is not None and status.online

    def missing(self) -> list[str]:
        """Expected components that have not announced themselves online."""
        return [cid for cid in self.expected if not self.is_online(cid)]

    def still_online(self) -> list[str]:
        return [cid for cid in self.expected if self.is_online(cid)]

    async def wait_until(self, predicate: str) -> None:
        """Wait until every expected component is ``"online"``, or every one ``"offline"``."""
        check = self.missing if predicate == "online" else self.still_online
        async with self._changed:
            await self._changed.wait_for(lambda: not check())

    def rows(self) -> list[Row]:
        return [
            row_for(self.statuses[cid])
            if cid in self.statuses
            else Row(cid, pid, False, None, {}, None)
            for cid, pid in self.expected.items()
        ]


def row_for(status: ComponentStatus) -> Row:
    keys = (*KEY_COUNTERS.get(status.component, ()), "rejected")
    state = status.detail.get("state")
    return Row(
        component_id=status.component_id,
        pid=status.pid,
        online=status.online,
        software_id=status.software_id,
        counters={k: status.counters.get(k, 0) for k in keys},
        state=None if state is None else str(state),
    )


# Retained messages arrive right after SUBSCRIBE; a quiet gap this long means "all of them".
QUIET_S = 0.5
# ... or after this long in all: with a heartbeat per component per second (six processes
# with the portal) a quiet gap of QUIET_S may never come, and retained ones came first.
RETAINED_MAX_S = 2.0


async def read_retained(
    broker: BrokerAddress, topics: Topics, deadline_s: float = 5.0
) -> tuple[dict[str, ComponentStatus], InstrumentState | None]:
    """Every retained component status and the instrument state, as a new subscriber sees them."""
    statuses: dict[str, ComponentStatus] = {}
    state: InstrumentState | None = None
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=f"testbed-status-{os.getpid()}-{secrets.token_hex(4)}",
        socket_options=NODELAY,
        timeout=deadline_s,
    ) as client:
        await client.subscribe(topics.status_all, qos=1)
        await client.subscribe(topics.state, qos=1)
        messages = aiter(client.messages)
        until = time.monotonic() + RETAINED_MAX_S
        while time.monotonic() < until:
            try:
                async with asyncio.timeout(QUIET_S):
                    message = await anext(messages)
            except TimeoutError:
                break
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
            try:
                if topic == topics.state:
                    state = decode(InstrumentState, payload, topic)
                else:
                    status = decode(ComponentStatus, payload, topic)
                    statuses[status.component_id] = status
            except RejectedPayload:
                continue
    return statuses, state
