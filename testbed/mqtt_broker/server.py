"""The embedded MQTT 3.1.1 broker: connections, sessions, retained messages, Last Will.

What the testbed's wire contract needs (ARCHITECTURE.md §7), done the way
Mosquitto does it: QoS 0 and 1 (a QoS 2 subscription is granted QoS 1; a QoS 2
PUBLISH is received with PUBREC/PUBREL/PUBCOMP), retained messages, Last Will on
any close that was not a DISCONNECT (also a keep-alive timeout, a protocol error
or a takeover), persistent sessions with queued QoS 1 messages, and session
takeover by client id. Clients are anonymous: user names and passwords are
accepted and not checked (the provisioned users and ACL are Mosquitto's, issue 10).

Why not amqtt: see docs/adr/0011-own-embedded-mqtt-broker.md. In short, every
client here is served without waiting on any other: a publish is routed and
written to each subscriber's transport in the same step, acknowledgements never
hold up another client's packets, and writes are coalesced once per loop turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Callable

import structlog

from testbed.mqtt_broker import packets as p
from testbed.mqtt_broker.session import Session
from testbed.mqtt_broker.topic_filters import Subscriptions, matches, valid_filter
from wire.settings import BrokerAddress

log = structlog.get_logger()

# A client that has not sent CONNECT after this long is dropped (§3.1: "reasonable time").
CONNECT_TIMEOUT_S = 10.0
# Larger than any record batch the instrument sends; a bigger packet closes the connection.
MAX_PACKET_SIZE = 16 * 1024 * 1024
# A subscriber that stopped reading while QoS 0 traffic piles up is disconnected.
MAX_WRITE_BUFFER = 64 * 1024 * 1024


class Broker:
    """Sessions, subscriptions and retained messages of one broker."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.subscriptions = Subscriptions()
        self.retained: dict[str, tuple[bytes, int]] = {}
        self.connections: set[Connection] = set()

    def route(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """A PUBLISH (or a Last Will): keep it if retained, hand it to every subscriber."""
        if retain:
            if payload:
                self.retained[topic] = (payload, qos)
            else:  # §3.3.1.3: an empty retained message deletes the retained one
                self.retained.pop(topic, None)
        for client_id, granted in self.subscriptions.subscribers(topic).items():
            session = self.sessions[client_id]
            delivered = session.deliver(topic, payload, min(qos, granted), False)
            if not delivered and (session.dropped in (1, 10, 100, 1000)
                                  or session.dropped % 10_000 == 0):  # rate-limited
                log.warning("broker_queue_full", client_id=client_id, dropped=session.dropped)

    def open_session(self, connect: p.Connect) -> tuple[Session, bool]:
        """The session CONNECT asks for, and whether it existed (CONNACK session present)."""
        old = self.sessions.get(connect.client_id)
        if old is not None and old.link is not None:
            # §3.1.4-2: a second connection with the same id takes over; the first is
            # closed as if it had dropped, so its Last Will goes out first.
            old.link.close_for("taken over by a new connection")
        if old is not None and not connect.clean_session and not old.clean:
            return old, True
        if old is not None:
            self.end_session(old)
        session = Session(connect.client_id, connect.clean_session)
        self.sessions[connect.client_id] = session
        return session, False

    def end_session(self, session: Session) -> None:
        self.subscriptions.remove_client(session.client_id, list(session.filters))
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    def subscribe(self, session: Session, request: p.Subscribe) -> p.Suback:
        codes = []
        for topic_filter, qos in request.filters:
            if not valid_filter(topic_filter):
                codes.append(p.SUBSCRIBE_FAILURE)
                continue
            granted = min(qos, 1)
            session.filters[topic_filter] = granted
            self.subscriptions.add(session.client_id, topic_filter, granted)
            codes.append(granted)
        return p.Suback(request.packet_id, tuple(codes))

    def unsubscribe(self, session: Session, request: p.Unsubscribe) -> p.Ack:
        for topic_filter in request.filters:
            session.filters.pop(topic_filter, None)
            self.subscriptions.remove(session.client_id, topic_filter)
        return p.Ack(p.UNSUBACK, request.packet_id)

    def send_retained(self, session: Session, request: p.Subscribe, suback: p.Suback) -> None:
        """§3.3.1.3: a new subscription gets the retained messages it matches."""
        for (topic_filter, _), granted in zip(request.filters, suback.return_codes, strict=True):
            if granted == p.SUBSCRIBE_FAILURE:
                continue
            for topic, (payload, qos) in list(self.retained.items()):
                if matches(topic_filter, topic):
                    session.deliver(topic, payload, min(qos, granted), True)


class Connection(asyncio.Protocol):
    """One client's TCP connection."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.reader = p.PacketReader(MAX_PACKET_SIZE)
        self.session: Session | None = None
        self.will: p.Will | None = None
        self.peer = "?"
        self.closing = False
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self._last_heard = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # ARCHITECTURE.md §10: without it a QoS 1 round trip waits for delayed ACKs.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.broker.connections.add(self)
        self._watch(CONNECT_TIMEOUT_S)

    def data_received(self, data: bytes) -> None:
        self._last_heard = self._loop.time()
        for packet in self.reader.feed(data):
            if self.closing:
                return
            self._handle(packet)
        error = self.reader.error
        if error is not None and not self.closing:
            if isinstance(error, p.UnsupportedProtocol) and self.session is None:
                self.send(p.encode(p.Connack(False, p.REFUSED_PROTOCOL)))
            self.close_for(f"protocol error: {error}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.broker.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if not self.closing:
            self.closing = True
            self._gone("connection lost" + (f": {exc}" if exc else ""))

    # -- sending ------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue bytes for the client; everything queued in one loop turn goes in one write."""
        if self.closing:
            return
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        transport = self._transport
        if not self._out or transport is None or transport.is_closing():
            self._out.clear()
            return
        transport.write(b"".join(self._out))
        self._out.clear()
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.close_for("client does not read (write buffer full)")

    # -- closing ------------------------------------------------------------------------

    def close_for(self, reason: str) -> None:
        """Close without a DISCONNECT from the client: the Last Will is published."""
        if self.closing:
            return
        self._flush()  # a CONNACK refusal still reaches the client
        self.closing = True
        if self._transport is not None:
            self._transport.close()
        self._gone(reason)

    def _gone(self, reason: str) -> None:
        session = self.session
        if session is None:
            return
        log.info("client_disconnected", client_id=session.client_id, peer=self.peer,
                 reason=reason, will=self.will is not None)
        if session.link is self:
            session.detach()
            if session.clean:
                self.broker.end_session(session)
        will, self.will = self.will, None
        if will is not None:
            self.broker.route(will.topic, will.payload, will.qos, will.retain)

    def _watch(self, limit_s: float) -> None:
        """Close the connection when nothing was heard for ``limit_s`` (§3.1.2.10)."""
        idle = self._loop.time() - self._last_heard
        if idle >= limit_s:
            self.close_for(f"nothing heard for {limit_s:g} s")
            return
        self._timer = self._loop.call_later(limit_s - idle, self._watch, limit_s)

    # -- packets ------------------------------------------------------------------------

    def _handle(self, packet: p.Packet) -> None:  # noqa: PLR0912 - one branch per type
        session = self.session
        if isinstance(packet, p.Publish):
            if session is None:
                self.close_for("PUBLISH before CONNECT")
            else:
                self._publish(session, packet)
        elif isinstance(packet, p.Ack) and session is not None:
            if packet.kind == p.PUBACK:
                session.acknowledged(packet.packet_id)
            elif packet.kind == p.PUBREL:
                session.qos2_received.discard(packet.packet_id)
                self.send(p.encode(p.Ack(p.PUBCOMP, packet.packet_id)))
            else:  # PUBREC/PUBCOMP answer a QoS 2 PUBLISH, which this broker never sends
                self.close_for(f"unexpected packet type {packet.kind}")
        elif isinstance(packet, p.Subscribe) and session is not None:
            suback = self.broker.subscribe(session, packet)
            self.send(p.encode(suback))
            self.broker.send_retained(session, packet, suback)
        elif isinstance(packet, p.Unsubscribe) and session is not None:
            self.send(p.encode(self.broker.unsubscribe(session, packet)))
        elif isinstance(packet, p.Bare) and packet.kind == p.PINGREQ and session is not None:
            self.send(p.encode(p.Bare(p.PINGRESP)))
        elif isinstance(packet, p.Bare) and packet.kind == p.DISCONNECT and session is not None:
            self.will = None  # §3.14.4: a clean DISCONNECT discards the Last Will
            self.close_for("DISCONNECT")
        elif isinstance(packet, p.Connect) and session is None:
            self._connect(packet)
        else:
            self.close_for(f"unexpected {type(packet).__name__}"
                           + (" before CONNECT" if session is None else ""))

    def _connect(self, connect: p.Connect) -> None:
        if not connect.client_id:
            if not connect.clean_session:  # §3.1.3-8: a persistent session needs a name
                self.send(p.encode(p.Connack(False, p.REFUSED_IDENTIFIER)))
                self.close_for("empty client id with a persistent session")
                return
            connect = p.Connect(f"auto-{uuid.uuid4().hex[:12]}", True, connect.keepalive,
                                connect.will, connect.username, connect.password)
        session, present = self.broker.open_session(connect)
        self.session = session
        self.will = connect.will
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if connect.keepalive:
            self._watch(connect.keepalive * 1.5)
        self.send(p.encode(p.Connack(present, p.ACCEPTED)))
        log.info("client_connected", client_id=connect.client_id, peer=self.peer,
                 clean_session=connect.clean_session, keepalive=connect.keepalive,
                 session_present=present)
        session.attach(self)

    def _publish(self, session: Session, packet: p.Publish) -> None:
        if packet.qos == 2:
            assert packet.packet_id is not None
            first = packet.packet_id not in session.qos2_received
            session.qos2_received.add(packet.packet_id)
            if first:  # a resent QoS 2 PUBLISH before PUBREL is not delivered twice
                self.broker.route(packet.topic, packet.payload, 2, packet.retain)
            self.send(p.encode(p.Ack(p.PUBREC, packet.packet_id)))
            return
        self.broker.route(packet.topic, packet.payload, packet.qos, packet.retain)
        if packet.qos == 1:
            assert packet.packet_id is not None
            self.send(p.encode(p.Ack(p.PUBACK, packet.packet_id)))


async def serve(host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Run the broker on ``host:port`` until cancelled; OSError if the port is taken."""
    loop = asyncio.get_running_loop()
    broker = Broker()
    server = await loop.create_server(lambda: Connection(broker), host, port)
    on_ready(BrokerAddress(host=host, port=port).url())
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        for connection in list(broker.connections):
            connection.will = None  # the broker stops, the clients did not fail
            connection.close_for("broker stopping")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()
