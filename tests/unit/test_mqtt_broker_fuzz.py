"""The embedded broker survives any sequence of packets from misbehaving clients.

Hypothesis drives two raw connections with well-formed packets in any order (PUBLISH
before CONNECT, acknowledgements of nothing, a second CONNECT, QoS 2 halves, garbage
in between); afterwards the broker must have raised nothing in its event loop and must
still serve a well-behaved client: subscribe, retained delivery, QoS 1 round trip.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.mqtt_broker import packets as p
from testbed.mqtt_broker.server import Broker, Connection

topics = st.sampled_from(["a", "a/b", "mi/t/x", "$SYS/x"])
filters = st.sampled_from(["a", "a/#", "+/b", "#", "a/#/b", "", "mi/+/x"])
ids = st.integers(1, 5)
actions = st.one_of(
    st.builds(p.Connect, st.sampled_from(["c1", "c2", ""]), st.booleans(), st.integers(0, 5),
              st.none() | st.builds(p.Will, topics, st.binary(max_size=4), st.integers(0, 2),
                                    st.booleans())),
    st.builds(p.Publish, topics, st.binary(max_size=8), st.integers(0, 2), st.booleans(),
              st.just(False), ids).map(
        lambda x: x if x.qos else p.Publish(x.topic, x.payload, 0, x.retain)),
    st.builds(p.Ack, st.sampled_from(p.ACK_KINDS), ids),
    st.builds(p.Subscribe, ids, st.lists(st.tuples(filters, st.integers(0, 2)), min_size=1,
                                         max_size=3).map(tuple)),
    st.builds(p.Unsubscribe, ids, st.lists(filters, min_size=1, max_size=2).map(tuple)),
    st.sampled_from([p.Bare(p.PINGREQ), p.Bare(p.DISCONNECT), p.Bare(p.PINGRESP)]),
    st.binary(min_size=1, max_size=6),  # garbage
)
scripts = st.lists(st.tuples(st.integers(0, 1), actions), max_size=25)


def wire(action: p.Packet | bytes) -> bytes:
    return action if isinstance(action, bytes) else p.encode(action)


async def exchange(port: int, *packets: p.Packet, expect: int) -> list[p.Packet]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = p.PacketReader()
    got: list[p.Packet] = []
    writer.write(b"".join(p.encode(x) for x in packets))
    async with asyncio.timeout(5):
        while len(got) < expect:
            data = await reader.read(65536)
            assert data, f"closed after {got}"
            got += decoder.feed(data)
    writer.close()
    return got


async def run_script(script: list[tuple[int, p.Packet | bytes]]) -> list[str]:
    loop = asyncio.get_running_loop()
    errors: list[str] = []

    def record(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(str(context.get("exception") or context.get("message")))

    loop.set_exception_handler(record)
    broker = Broker()
    server = await loop.create_server(lambda: Connection(broker), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        writers = [(await asyncio.open_connection("127.0.0.1", port))[1] for _ in range(2)]
        for who, action in script:
            if not writers[who].is_closing():
                writers[who].write(wire(action))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        for w in writers:
            w.close()
        # A well-behaved client is still served: retained, subscribe, QoS 1 round trip.
        await exchange(port, p.Connect("pub", True, 30),
                       p.Publish("ok/r", b"kept", 1, True, packet_id=1), expect=2)
        got = await exchange(port, p.Connect("sub", True, 30), p.Subscribe(1, (("ok/#", 1),)),
                             expect=3)
        assert got[:2] == [p.Connack(False, 0), p.Suback(1, (1,))]
        assert isinstance(got[2], p.Publish)
        assert (got[2].topic, got[2].payload, got[2].retain) == ("ok/r", b"kept", True)
    finally:
        server.close()
        for c in list(broker.connections):
            c.close_for("test over")
        await server.wait_closed()
    return errors


@given(scripts)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_sequence_of_packets_breaks_the_broker(
    script: list[tuple[int, p.Packet | bytes]],
) -> None:
    assert asyncio.run(run_script(script)) == []
