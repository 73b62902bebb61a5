"""T8 availability: who is online, from retained status messages and their heartbeats.

Every component publishes a retained ``ComponentStatus`` each heartbeat and has
a Last Will that says ``online: false``. A sensor is lost when its Last Will
arrives or when no heartbeat came for 1.25 heartbeat intervals; checked every
quarter interval, loss is seen within 1.5 intervals (T8).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mother_unit.core import Core
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus

LOSS_FACTOR = 1.25


@dataclass
class Seen:
    status: ComponentStatus
    at: float  # monotonic time of arrival


class Availability:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.seen: dict[str, Seen] = {}
        core.link.route(core.topics.status_all, self.on_status)

    async def on_status(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained message
        try:
            status = decode(ComponentStatus, payload, topic)
        except RejectedPayload as e:
            self.core.reject(e.reason, topic=topic, link="status")
            return
        if topic != self.core.topics.status(status.component_id):
            self.core.reject("wrong_topic", topic=topic, link="status")
            return
        self.seen[status.component_id] = Seen(status, time.monotonic())

    def alive(self, component_id: str, now: float | None = None) -> bool | None:
        """True/False once we heard of it; None if never."""
        seen = self.seen.get(component_id)
        if seen is None:
            return None
        now = time.monotonic() if now is None else now
        interval = seen.status.heartbeat_s or self.core.link.heartbeat_s
        return seen.status.online and now - seen.at <= LOSS_FACTOR * interval

    def heartbeat_s(self, component_id: str) -> float:
        seen = self.seen.get(component_id)
        return (seen.status.heartbeat_s if seen else None) or self.core.link.heartbeat_s
