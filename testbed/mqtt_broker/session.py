"""One client's session (MQTT 3.1.1 §3.1.2.4): its subscriptions and its QoS 1 delivery.

A session outlives its connection when the client asked for a persistent one
(clean session 0): QoS 1 messages published while it is away are queued, and
messages sent but not acknowledged are sent again, with DUP, when it comes
back (§4.4). Both are bounded; a message that does not fit is counted and
reported by the broker, never lost without a trace.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Protocol

from testbed.mqtt_broker.packets import encode_publish

# QoS 1 messages sent to one client and not yet acknowledged. The window keeps a slow
# client from growing the broker's socket buffer; past it messages wait in the queue.
MAX_INFLIGHT = 256
# QoS 1 messages kept for one client (offline, or behind a full window): Mosquitto keeps
# 1,000 by default; 10,000 holds 100 s of a 100 Hz sensor while its reader restarts.
MAX_QUEUED = 10_000

Message = tuple[str, bytes, bool]  # topic, payload, retain flag


class Link(Protocol):
    """What a session needs of its connection."""

    def send(self, data: bytes) -> None: ...

    def close_for(self, reason: str) -> None: ...


class Session:
    def __init__(self, client_id: str, clean: bool) -> None:
        self.client_id = client_id
        self.clean = clean
        self.filters: dict[str, int] = {}
        self.link: Link | None = None
        self.inflight: OrderedDict[int, Message] = OrderedDict()
        self.queued: deque[Message] = deque()
        self.qos2_received: set[int] = set()  # PUBREC sent, PUBREL awaited (§4.3.3)
        self.dropped = 0
        self._last_id = 0

    def deliver(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Send now, or keep for later; False if the message had to be dropped."""
        link = self.link
        if qos == 0:
            if link is not None:  # QoS 0 is never kept for an absent client (§3.1.2.4)
                link.send(encode_publish(topic, payload, 0, retain, None))
            return True
        if link is not None and not self.queued and len(self.inflight) < MAX_INFLIGHT:
            self._send(link, (topic, payload, retain))
            return True
        if len(self.queued) >= MAX_QUEUED:
            self.dropped += 1
            return False
        self.queued.append((topic, payload, retain))
        return True

    def acknowledged(self, packet_id: int) -> None:
        """PUBACK: the message is the client's; send what waited for room."""
        if self.inflight.pop(packet_id, None) is not None:
            self._pump()

    def attach(self, link: Link) -> None:
        """A connection took the session: resend the unacknowledged, then the queued."""
        self.link = link
        for packet_id, (topic, payload, retain) in self.inflight.items():
            link.send(encode_publish(topic, payload, 1, retain, packet_id, dup=True))
        self._pump()

    def detach(self) -> None:
        self.link = None

    def _pump(self) -> None:
        link = self.link
        while link is not None and self.queued and len(self.inflight) < MAX_INFLIGHT:
            self._send(link, self.queued.popleft())

    def _send(self, link: Link, message: Message) -> None:
        packet_id = self._next_id()
        self.inflight[packet_id] = message
        topic, payload, retain = message
        link.send(encode_publish(topic, payload, 1, retain, packet_id))

    def _next_id(self) -> int:
        # Ids cycle through 1..65535 and skip those still in flight (at most MAX_INFLIGHT).
        packet_id = self._last_id
        while True:
            packet_id = packet_id % 65535 + 1
            if packet_id not in self.inflight:
                self._last_id = packet_id
                return packet_id
