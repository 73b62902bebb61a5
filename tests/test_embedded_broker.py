"""The embedded broker (``testbed broker``) follows MQTT 3.1.1 where the testbed relies on it.

Each test runs the broker as its own process and talks to it with aiomqtt (paho) or,
where a test must misbehave on purpose (stay silent, send garbage, never acknowledge),
with raw packets from the broker's own codec over a plain socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomqtt
import pytest

from testbed.mqtt_broker import packets as p
from testbed.testing import RunningBroker
from wire.client import NODELAY

pytestmark = pytest.mark.timeout(30)


def client(b: RunningBroker, name: str, **kwargs: object) -> aiomqtt.Client:
    return aiomqtt.Client(b.address.host, b.address.port, identifier=name,
                          socket_options=NODELAY, timeout=5, **kwargs)  # type: ignore[arg-type]


async def messages(c: aiomqtt.Client, n: int, within_s: float = 5.0) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []
    async with asyncio.timeout(within_s):
        async for message in c.messages:
            got.append(message)
            if len(got) == n:
                return got
    return got


async def nothing_within(c: aiomqtt.Client, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            message = await anext(aiter(c.messages))
    except TimeoutError:
        return
    pytest.fail(f"unexpected message on {message.topic.value}: {message.payload!r}")


class Raw:
    """A client speaking packets by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = p.PacketReader()
        self.pending: list[p.Packet] = []

    async def send(self, *packets: p.Packet | bytes) -> None:
        self.writer.write(b"".join(x if isinstance(x, bytes) else p.encode(x) for x in packets))
        await self.writer.drain()

    async def next(self, within_s: float = 5.0) -> p.Packet:
        async with asyncio.timeout(within_s):
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the broker closed the connection")
                self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    async def closed(self, within_s: float = 5.0) -> bool:
        async with asyncio.timeout(within_s):
            while await self.reader.read(65536):
                pass
        return True


@asynccontextmanager
async def raw(b: RunningBroker, connect: p.Connect | None = None) -> AsyncIterator[Raw]:
    reader, writer = await asyncio.open_connection(b.address.host, b.address.port)
    r = Raw(reader, writer)
    try:
        if connect is not None:
            await r.send(connect)
            assert await r.next() == p.Connack(False, p.ACCEPTED)
        yield r
    finally:
        writer.close()


WILL = p.Will("mi/t/status/raw", b"offline", 1, True)


async def test_a_silent_client_is_dropped_after_one_and_a_half_keepalives_with_its_will(
    embedded_broker: RunningBroker,
) -> None:
    async with client(embedded_broker, "watcher") as watcher:
        await watcher.subscribe("mi/t/status/#", qos=1)
        async with raw(embedded_broker, p.Connect("silent", True, 1, WILL)):
            loop = asyncio.get_running_loop()
            started = loop.time()
            (will,) = await messages(watcher, 1, within_s=5)
            took = loop.time() - started
    assert (will.topic.value, will.payload) == ("mi/t/status/raw", b"offline")
    assert 1.0 <= took < 3.0


async def test_garbage_closes_only_that_connection_and_publishes_its_will(
    embedded_broker: RunningBroker,
) -> None:
    async with client(embedded_broker, "watcher") as watcher, \
            client(embedded_broker, "pub") as pub:
        await watcher.subscribe("mi/t/#", qos=1)
        async with raw(embedded_broker, p.Connect("junk", True, 60, WILL)) as junk:
            await junk.send(p.Publish("mi/t/data", b"intact", 1, packet_id=1), b"\xf0\x00garbage")
            assert await junk.next() == p.Ack(p.PUBACK, 1)  # what came before still counts
            assert await junk.closed()
        await pub.publish("mi/t/data", b"after", qos=1)
        got = await messages(watcher, 3)
    assert [(m.topic.value, m.payload) for m in got] == [
        ("mi/t/data", b"intact"), ("mi/t/status/raw", b"offline"), ("mi/t/data", b"after")]


async def test_a_persistent_session_gets_what_was_published_while_it_was_away(
    embedded_broker: RunningBroker,
) -> None:
    async with client(embedded_broker, "mu", clean_session=False) as mu:
        await mu.subscribe("mi/t/sensor/+/data", qos=1)
    async with client(embedded_broker, "sensor") as sensor:
        for i in range(50):
            await sensor.publish("mi/t/sensor/1/data", str(i).encode(), qos=1)
        await sensor.publish("mi/t/other", b"retained elsewhere", qos=1, retain=True)
    async with client(embedded_broker, "mu", clean_session=False) as mu:
        got = await messages(mu, 50)
        # Reconnecting re-subscribes nothing and gets no retained message of other topics.
        await nothing_within(mu, 0.5)
    assert [m.payload for m in got] == [str(i).encode() for i in range(50)]


async def test_an_unacknowledged_message_is_sent_again_with_dup_on_reconnect(
    embedded_broker: RunningBroker,
) -> None:
    persistent = p.Connect("forgetful", False, 60)
    async with raw(embedded_broker, persistent) as r:
        await r.send(p.Subscribe(1, (("mi/t/x", 1),)))
        assert await r.next() == p.Suback(1, (1,))
        async with client(embedded_broker, "pub") as pub:
            await pub.publish("mi/t/x", b"m1", qos=1)
        first = await r.next()
        assert isinstance(first, p.Publish)
        assert (first.payload, first.dup) == (b"m1", False)
        # Closed without a PUBACK.
    async with raw(embedded_broker) as again:
        await again.send(persistent)
        assert await again.next() == p.Connack(True, p.ACCEPTED)
        resent = await again.next()
        assert isinstance(resent, p.Publish)
        assert (resent.payload, resent.dup, resent.packet_id) == (b"m1", True, first.packet_id)
        await again.send(p.Ack(p.PUBACK, first.packet_id or 0), p.Bare(p.DISCONNECT))
        assert await again.closed()


async def test_a_second_connection_with_the_same_id_takes_over_and_the_first_wills(
    embedded_broker: RunningBroker,
) -> None:
    async with client(embedded_broker, "watcher") as watcher:
        await watcher.subscribe("mi/t/status/#", qos=1)
        async with raw(embedded_broker, p.Connect("twin", True, 60, WILL)) as first, \
                raw(embedded_broker, p.Connect("twin", True, 60)):
            assert await first.closed()
            (will,) = await messages(watcher, 1)
    assert will.payload == b"offline"


async def test_disconnect_discards_the_will_and_qos2_is_delivered_once(
    embedded_broker: RunningBroker,
) -> None:
    async with client(embedded_broker, "watcher") as watcher:
        await watcher.subscribe("mi/t/#", qos=2)
        async with raw(embedded_broker, p.Connect("q2", True, 60, WILL)) as r:
            publish = p.Publish("mi/t/q2", b"once", 2, packet_id=7)
            await r.send(publish)
            assert await r.next() == p.Ack(p.PUBREC, 7)
            await r.send(p.Publish("mi/t/q2", b"once", 2, dup=True, packet_id=7))  # a resend
            assert await r.next() == p.Ack(p.PUBREC, 7)
            await r.send(p.Ack(p.PUBREL, 7))
            assert await r.next() == p.Ack(p.PUBCOMP, 7)
            await r.send(p.Bare(p.DISCONNECT))
            assert await r.closed()
        got = await messages(watcher, 1)
        await nothing_within(watcher, 0.5)  # no second copy, no will
    assert (got[0].payload, got[0].qos) == (b"once", 1)  # QoS 2 is granted as 1


async def test_an_empty_retained_message_deletes_the_retained_one(
    embedded_broker: RunningBroker,
) -> None:
    async with client(embedded_broker, "pub") as pub:
        await pub.publish("mi/t/state", b"OPERATIONAL", qos=1, retain=True)
        await pub.publish("mi/t/state", b"", qos=1, retain=True)
    async with client(embedded_broker, "late") as late:
        await late.subscribe("mi/t/#", qos=1)
        await nothing_within(late, 0.5)


async def test_bad_filters_fail_alone_and_another_protocol_version_is_refused(
    embedded_broker: RunningBroker,
) -> None:
    async with raw(embedded_broker, p.Connect("subs", True, 60)) as r:
        await r.send(p.Subscribe(3, (("a/#/b", 1), ("a/+", 2), ("", 0))))
        assert await r.next() == p.Suback(3, (p.SUBSCRIBE_FAILURE, 1, p.SUBSCRIBE_FAILURE))
    async with raw(embedded_broker) as v5:
        await v5.send(b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00")
        assert await v5.next() == p.Connack(False, p.REFUSED_PROTOCOL)
        assert await v5.closed()
    async with raw(embedded_broker) as anonymous:
        await anonymous.send(p.Connect("", False, 60))
        assert await anonymous.next() == p.Connack(False, p.REFUSED_IDENTIFIER)
        assert await anonymous.closed()
