"""MQTT 3.1.1 control packets: the embedded broker's wire codec (OASIS MQTT 3.1.1, §2-§3).

``PacketReader`` turns a byte stream, in whatever pieces the network delivers it,
into packets; anything that breaks the specification raises ``MalformedPacket``
(the broker then closes that one connection, §4.8). The encoders write every
packet type, both directions: the broker uses the server side, the tests the
client side, so the property tests can round-trip the whole codec.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

# CONNACK return codes (§3.2.2.3).
ACCEPTED, REFUSED_PROTOCOL, REFUSED_IDENTIFIER = 0, 1, 2
SUBSCRIBE_FAILURE = 0x80
# §2.2.3: the remaining length takes at most four bytes.
MAX_REMAINING_LENGTH = 268_435_455


class MalformedPacket(Exception):
    """The peer broke the protocol: close its connection."""


class UnsupportedProtocol(MalformedPacket):
    """A CONNECT of another protocol version: answer CONNACK 1, then close (§3.1.2.2)."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True, slots=True)
class Connect:
    client_id: str
    clean_session: bool
    keepalive: int
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    return_code: int


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK: a type and a packet id."""

    kind: int
    packet_id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    packet_id: int
    filters: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Suback:
    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    packet_id: int
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Bare:
    """PINGREQ, PINGRESP or DISCONNECT: nothing but the type."""

    kind: int


Packet = Connect | Connack | Publish | Ack | Subscribe | Suback | Unsubscribe | Bare
ACK_KINDS = (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK)
# §2.2.2: the flags these packet types must carry; PUBLISH has its own.
FIXED_FLAGS = {PUBREL: 2, SUBSCRIBE: 2, UNSUBSCRIBE: 2}


class PacketReader:
    """Incremental decoder: ``feed`` bytes as they arrive, get the complete packets."""

    def __init__(self, max_packet_size: int = MAX_REMAINING_LENGTH) -> None:
        self.max_packet_size = max_packet_size
        self.error: MalformedPacket | None = None
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        """The packets ``data`` completes, in order.

        After a protocol error ``error`` is set and the stream is abandoned: the packets
        before the error are still returned (a PUBLISH that arrived intact is handled),
        nothing after it is read.
        """
        if self.error is not None:
            return []
        buf = self._buf
        buf += data
        out: list[Packet] = []
        start = 0
        try:
            while len(buf) - start >= 2:
                header = _remaining_length(buf, start + 1)
                if header is None:
                    break
                length, body_at = header
                if length > self.max_packet_size:
                    raise MalformedPacket(
                        f"packet of {length} bytes exceeds the limit of {self.max_packet_size}"
                    )
                if len(buf) < body_at + length:
                    break
                out.append(decode(buf[start], bytes(buf[body_at:body_at + length])))
                start = body_at + length
        except MalformedPacket as e:
            self.error = e
            buf.clear()
        else:
            del buf[:start]
        return out


def _remaining_length(buf: bytearray, at: int) -> tuple[int, int] | None:
    """(length, offset of the body), or None while the length's bytes are incomplete."""
    value, shift = 0, 0
    for i in range(at, min(at + 4, len(buf))):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    if len(buf) >= at + 4:
        raise MalformedPacket("remaining length longer than four bytes")
    return None


class _Body:
    """A cursor over one packet's variable header and payload."""

    __slots__ = ("at", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise MalformedPacket("packet shorter than its fields")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("!H", self.take(2))[0]
        return value

    def binary(self) -> bytes:
        return self.take(self.u16())

    def text(self) -> str:
        raw = self.binary()
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedPacket("string is not UTF-8") from e
        if "\x00" in value:  # §1.5.3: U+0000 must not occur
            raise MalformedPacket("string contains U+0000")
        return value

    def rest(self) -> bytes:
        chunk = self.data[self.at:]
        self.at = len(self.data)
        return chunk

    def left(self) -> int:
        return len(self.data) - self.at

    def done(self) -> None:
        if self.at != len(self.data):
            raise MalformedPacket("packet longer than its fields")


def decode(first: int, data: bytes) -> Packet:  # noqa: PLR0912 - one branch per type
    """One packet from its first byte and its body (variable header and payload)."""
    kind, flags = first >> 4, first & 0x0F
    if kind != PUBLISH and flags != FIXED_FLAGS.get(kind, 0):
        raise MalformedPacket(f"packet type {kind} with flags {flags:#x}")
    body = _Body(data)
    packet: Packet
    if kind == CONNECT:
        packet = _decode_connect(body)
    elif kind == PUBLISH:
        packet = _decode_publish(flags, body)
    elif kind in ACK_KINDS:
        packet = Ack(kind, _packet_id(body))
    elif kind == SUBSCRIBE:
        packet_id = _packet_id(body)
        filters = []
        while body.left():
            topic_filter = body.text()
            qos = body.u8()
            if qos > 2:  # §3.8.3.1: the upper six bits are reserved, QoS 3 is invalid
                raise MalformedPacket(f"SUBSCRIBE requested QoS {qos}")
            filters.append((topic_filter, qos))
        if not filters:
            raise MalformedPacket("SUBSCRIBE without a topic filter")
        packet = Subscribe(packet_id, tuple(filters))
    elif kind == UNSUBSCRIBE:
        packet_id = _packet_id(body)
        names = []
        while body.left():
            names.append(body.text())
        if not names:
            raise MalformedPacket("UNSUBSCRIBE without a topic filter")
        packet = Unsubscribe(packet_id, tuple(names))
    elif kind == CONNACK:
        ack_flags, code = body.u8(), body.u8()
        packet = Connack(bool(ack_flags & 1), code)
    elif kind == SUBACK:
        packet = Suback(_packet_id(body), tuple(body.rest()))
    elif kind in (PINGREQ, PINGRESP, DISCONNECT):
        packet = Bare(kind)
    else:
        raise MalformedPacket(f"reserved packet type {kind}")
    body.done()
    return packet


def _packet_id(body: _Body) -> int:
    packet_id = body.u16()
    if packet_id == 0:  # §2.3.1: non-zero
        raise MalformedPacket("packet identifier 0")
    return packet_id


def _decode_connect(body: _Body) -> Connect:
    name, level = body.text(), body.u8()
    if (name, level) not in (("MQTT", 4), ("MQIsdp", 3)):
        raise UnsupportedProtocol(f"protocol {name!r} level {level}")
    flags = body.u8()
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag set")
    keepalive = body.u16()
    client_id = body.text()
    will = None
    will_qos = (flags >> 3) & 0x03
    if flags & 0x04:
        if will_qos > 2:
            raise MalformedPacket("will QoS 3")
        topic = body.text()
        _check_topic_name(topic)
        will = Will(topic, body.binary(), will_qos, bool(flags & 0x20))
    elif will_qos or flags & 0x20:
        raise MalformedPacket("will QoS or retain without a will")
    username = body.text() if flags & 0x80 else None
    if flags & 0x40 and username is None:
        raise MalformedPacket("password without a user name")
    password = body.binary() if flags & 0x40 else None
    return Connect(client_id, bool(flags & 0x02), keepalive, will, username, password)


def _decode_publish(flags: int, body: _Body) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    dup = bool(flags & 0x08)
    if dup and qos == 0:
        raise MalformedPacket("DUP set on a QoS 0 PUBLISH")
    topic = body.text()
    _check_topic_name(topic)
    packet_id = _packet_id(body) if qos else None
    return Publish(topic, body.rest(), qos, bool(flags & 0x01), dup, packet_id)


def _check_topic_name(topic: str) -> None:
    if not topic:
        raise MalformedPacket("empty topic name")
    if "+" in topic or "#" in topic:
        raise MalformedPacket(f"wildcard in topic name {topic!r}")


# -- encoding ------------------------------------------------------------------------------


def _frame(first: int, body: bytes) -> bytes:
    length = len(body)
    if length > MAX_REMAINING_LENGTH:
        raise ValueError(f"packet of {length} bytes is too large for MQTT")
    header = bytearray([first])
    while True:
        byte = length & 0x7F
        length >>= 7
        header.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def _binary(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def encode(packet: Packet) -> bytes:  # noqa: PLR0911 - one return per packet type
    if isinstance(packet, Publish):
        return encode_publish(packet.topic, packet.payload, packet.qos, packet.retain,
                              packet.packet_id, dup=packet.dup)
    if isinstance(packet, Ack):
        return bytes([packet.kind << 4 | FIXED_FLAGS.get(packet.kind, 0), 2]) + struct.pack(
            "!H", packet.packet_id)
    if isinstance(packet, Connack):
        return bytes([CONNACK << 4, 2, int(packet.session_present), packet.return_code])
    if isinstance(packet, Suback):
        return _frame(SUBACK << 4, struct.pack("!H", packet.packet_id) + bytes(packet.return_codes))
    if isinstance(packet, Bare):
        return bytes([packet.kind << 4, 0])
    if isinstance(packet, Subscribe):
        body = struct.pack("!H", packet.packet_id) + b"".join(
            _text(f) + bytes([q]) for f, q in packet.filters)
        return _frame(SUBSCRIBE << 4 | 2, body)
    if isinstance(packet, Unsubscribe):
        body = struct.pack("!H", packet.packet_id) + b"".join(_text(f) for f in packet.filters)
        return _frame(UNSUBSCRIBE << 4 | 2, body)
    return _encode_connect(packet)


def _encode_connect(packet: Connect) -> bytes:
    flags = 0x02 if packet.clean_session else 0
    tail = _text(packet.client_id)
    if packet.will is not None:
        flags |= 0x04 | packet.will.qos << 3 | (0x20 if packet.will.retain else 0)
        tail += _text(packet.will.topic) + _binary(packet.will.payload)
    if packet.username is not None:
        flags |= 0x80
        tail += _text(packet.username)
    if packet.password is not None:
        flags |= 0x40
        tail += _binary(packet.password)
    body = _text("MQTT") + bytes([4, flags]) + struct.pack("!H", packet.keepalive) + tail
    return _frame(CONNECT << 4, body)


def encode_publish(
    topic: str, payload: bytes, qos: int, retain: bool, packet_id: int | None, *, dup: bool = False
) -> bytes:
    """The broker's hot path: one PUBLISH for one subscriber."""
    first = PUBLISH << 4 | qos << 1 | (0x08 if dup else 0) | (0x01 if retain else 0)
    variable = _text(topic)
    if qos:
        assert packet_id is not None
        variable += struct.pack("!H", packet_id)
    return _frame(first, variable + payload)
