"""The embedded broker's packet codec is network-facing: property-tested and fuzzed.

- every packet the codec writes reads back the same, in any split of the stream;
- arbitrary bytes, in arbitrary pieces, give packets or ``MalformedPacket``, never another
  exception, and nothing after an error is read;
- the rules of MQTT 3.1.1 that protect the broker (length limit, fixed flags, QoS 3,
  wildcards in a topic name, packet id 0) are refused.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.mqtt_broker import packets as p

text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
               max_size=20)
names = text.filter(lambda t: t != "" and "+" not in t and "#" not in t)
ids = st.integers(1, 65535)
payloads = st.binary(max_size=300)


@st.composite
def publishes(draw: st.DrawFn) -> p.Publish:
    qos = draw(st.integers(0, 2))
    return p.Publish(draw(names), draw(payloads), qos, draw(st.booleans()),
                     draw(st.booleans()) if qos else False, draw(ids) if qos else None)


wills = st.builds(p.Will, names, payloads, st.integers(0, 2), st.booleans())
connects = st.builds(
    p.Connect, text, st.booleans(), st.integers(0, 65535), st.none() | wills,
    st.none() | text, st.none(),
) | st.builds(p.Connect, text, st.booleans(), st.integers(0, 65535), st.none() | wills,
              text, st.binary(max_size=30))
packets = st.one_of(
    connects,
    publishes(),
    st.builds(p.Ack, st.sampled_from(p.ACK_KINDS), ids),
    st.builds(p.Subscribe, ids, st.lists(st.tuples(text.filter(bool), st.integers(0, 2)),
                                         min_size=1, max_size=4).map(tuple)),
    st.builds(p.Unsubscribe, ids, st.lists(text, min_size=1, max_size=4).map(tuple)),
    st.builds(p.Connack, st.booleans(), st.integers(0, 5)),
    st.builds(p.Suback, ids, st.lists(st.sampled_from([0, 1, 2, 0x80]), max_size=4).map(tuple)),
    st.sampled_from([p.Bare(p.PINGREQ), p.Bare(p.PINGRESP), p.Bare(p.DISCONNECT)]),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(st.lists(packets, max_size=8), st.lists(st.integers(0, 10_000), max_size=12))
@settings(max_examples=300)
def test_every_packet_reads_back_the_same_in_any_split(
    sent: list[p.Packet], cuts: list[int]
) -> None:
    stream = b"".join(p.encode(packet) for packet in sent)
    reader = p.PacketReader()
    got = [packet for piece in split(stream, cuts) for packet in reader.feed(piece)]
    assert reader.error is None
    assert got == sent


@given(st.binary(max_size=400), st.lists(st.integers(0, 10_000), max_size=8))
@settings(max_examples=1000)
def test_garbage_gives_packets_or_a_protocol_error_never_a_crash(
    data: bytes, cuts: list[int]
) -> None:
    reader = p.PacketReader(max_packet_size=1024)
    for piece in split(data, cuts):
        for packet in reader.feed(piece):
            # Whatever was decoded writes back (the codec reads nothing it cannot write).
            assert p.PacketReader().feed(p.encode(packet)) == [packet]
    if reader.error is not None:
        assert reader.feed(p.encode(p.Bare(p.PINGREQ))) == []  # abandoned for good


@given(publishes(), st.binary(min_size=1, max_size=50))
def test_packets_before_an_error_are_still_delivered(good: p.Publish, junk: bytes) -> None:
    reader = p.PacketReader()
    got = reader.feed(p.encode(good) + b"\x00\x00" + junk)  # type 0 is reserved
    assert got == [good]
    assert isinstance(reader.error, p.MalformedPacket)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x30\xff\xff\xff\xff\x7f", "longer than four bytes"),
        (b"\x32\x03\x00\x01a", "shorter than its fields"),  # QoS 1 without a packet id
        (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
        (b"\x38\x03\x00\x01a", "DUP set on a QoS 0"),
        (b"\x30\x03\x00\x01#", "wildcard in topic name"),
        (b"\x30\x04\x00\x02a+", "wildcard in topic name"),
        (b"\x30\x02\x00\x00", "empty topic name"),
        (b"\x30\x04\x00\x02\xc3\x28", "not UTF-8"),
        (b"\x30\x04\x00\x02a\x00", "U+0000"),
        (b"\x40\x02\x00\x00", "packet identifier 0"),
        (b"\x60\x02\x00\x01", "flags"),  # PUBREL must carry flags 0010
        (b"\x80\x02\x00\x01", "flags"),  # SUBSCRIBE too
        (b"\x82\x02\x00\x01", "without a topic filter"),
        (b"\x82\x06\x00\x01\x00\x01a\x03", "QoS 3"),
        (b"\xc0\x01\x00", "longer than its fields"),
        (b"\xf0\x00", "reserved packet type"),
        (b"\x10\x0c\x00\x04MQTT\x04\x01\x00\x00\x00\x00", "reserved flag"),
        (b"\x10\x0c\x00\x04MQTT\x04\x40\x00\x00\x00\x00", "password without a user name"),
        (b"\x10\x0c\x00\x04MQTT\x04\x08\x00\x00\x00\x00", "without a will"),
    ],
)
def test_protocol_violations_are_refused(data: bytes, why: str) -> None:
    reader = p.PacketReader()
    assert reader.feed(data) == []
    assert reader.error is not None
    assert why in str(reader.error)


def test_another_protocol_version_is_named_so_the_broker_can_answer_connack_1() -> None:
    mqtt5 = b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00"
    reader = p.PacketReader()
    reader.feed(mqtt5)
    assert isinstance(reader.error, p.UnsupportedProtocol)


def test_a_packet_over_the_limit_is_refused_from_its_header_alone() -> None:
    reader = p.PacketReader(max_packet_size=1000)
    assert reader.feed(b"\x30\xe9\x07") == []  # announces 1001 bytes; none of them sent
    assert reader.error is not None
    assert "exceeds the limit of 1000" in str(reader.error)
