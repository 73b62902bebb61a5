"""Section 1, baseline: raw aiomqtt through the same broker, no security at all.

A publisher process sends QoS 1 messages of the size of a sealed sample to a
subscriber process, as fast as it can with a bounded number of publishes in
flight (every publish result is checked: ARCHITECTURE §10); the subscriber
counts what arrives. Then, at a moderate rate, a ping process measures the
round trip publisher → broker → subscriber (which echoes) → broker → publisher.

The roles run as ``python -m testbed.bench.baseline pub|sub|ping ...``; the
parent (:func:`run_baseline`) starts them and reads one JSON line from each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import aiomqtt

from security_module.envelope import Sealer
from testbed.bench.procs import run_role
from testbed.bench.stats import percentile
from wire.client import NODELAY
from wire.codec import encode
from wire.messages import SAMPLE_MSG_TYPE, Sample
from wire.settings import BrokerAddress

TOPIC = "bench/baseline/data"
ECHO = "bench/baseline/echo"
INFLIGHT = 64


def sealed_sample_size() -> int:
    """The bytes of one sealed sample on the wire, as the sensor link sends it."""
    topic = "mi/gm-0001/sensor/sensor-1/data"
    sample = Sample(sensor_id="sensor-1", boot=1, seq=123_456, created_at=time.time(),
                    vm=1234.567, p=101.325, t=288.15)
    sealer = Sealer(os.urandom(32), "sensor-1", "mother-unit", 1)
    return len(encode(sealer.seal(SAMPLE_MSG_TYPE, topic, encode(sample))))


def _client(broker: BrokerAddress, role: str) -> aiomqtt.Client:
    client = aiomqtt.Client(broker.host, broker.port, username=broker.username,
                          password=broker.password, identifier=f"bench-{role}-{os.getpid()}",
                          socket_options=NODELAY, max_inflight_messages=1000,
                          max_queued_outgoing_messages=0)
    client.pending_calls_threshold = 10 * INFLIGHT  # we bound them ourselves
    return client


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def subscriber(broker: BrokerAddress, count: int, idle_s: float, echo: bool) -> None:
    received = 0
    first = last = 0.0
    async with _client(broker, "sub") as client:
        await client.subscribe(TOPIC, qos=1)
        _say(event="ready")
        messages = aiter(client.messages)
        while received < count:
            try:
                async with asyncio.timeout(idle_s):
                    message = await anext(messages)
            except TimeoutError:
                break
            last = time.perf_counter()
            if received == 0:
                first = last
            received += 1
            if echo:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                await client.publish(ECHO, payload, qos=1)
    span = last - first
    _say(event="done", received=received, span_s=span,
         rate=(received - 1) / span if span > 0 else 0.0)


async def publisher(broker: BrokerAddress, count: int, size: int, inflight: int) -> None:
    payload = os.urandom(size // 2).hex().encode()[:size]
    sent = errors = 0
    next_i = 0

    async def worker(client: aiomqtt.Client) -> None:
        nonlocal sent, errors, next_i
        while next_i < count:
            next_i += 1
            try:
                await client.publish(TOPIC, payload, qos=1)
            except aiomqtt.MqttError:
                errors += 1
            else:
                sent += 1

    async with _client(broker, "pub") as client:
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for i in range(inflight):
                tg.create_task(worker(client), name=f"publish-{i}")
        elapsed = time.perf_counter() - t0
    _say(event="done", sent=sent, errors=errors, elapsed_s=elapsed,
         rate=sent / elapsed if elapsed > 0 else 0.0)


async def ping(broker: BrokerAddress, rate_hz: float, duration_s: float, size: int) -> None:
    """Round trips at a fixed rate: publish seq, the echoing subscriber sends it back."""
    sent_at: dict[int, float] = {}
    rtts_ms: list[float] = []
    pad = b"x" * max(0, size - 12)
    errors = 0

    async def receive(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            t0 = sent_at.pop(int(payload[:12]), None)
            if t0 is not None:
                rtts_ms.append((time.perf_counter() - t0) * 1000.0)

    async with _client(broker, "ping") as client:
        await client.subscribe(ECHO, qos=1)
        async with asyncio.TaskGroup() as tg:
            listener = tg.create_task(receive(client), name="echo-listener")
            start = time.perf_counter()
            n = 0
            while (now := time.perf_counter()) - start < duration_s:
                while n < int((now - start) * rate_hz):
                    sent_at[n] = time.perf_counter()
                    try:
                        await client.publish(TOPIC, b"%012d" % n + pad, qos=1)
                    except aiomqtt.MqttError:
                        errors += 1
                    n += 1
                await asyncio.sleep(0.001)
            # The last answers: a short, fixed grace period (never waits forever).
            await asyncio.sleep(min(2.0, 0.1 + len(sent_at) * 0.01))
            listener.cancel()
    _say(event="done", sent=n, answered=len(rtts_ms), errors=errors,
         p50_ms=percentile(rtts_ms, 0.5), p99_ms=percentile(rtts_ms, 0.99),
         max_ms=max(rtts_ms) if rtts_ms else 0.0)


async def run_baseline(broker: BrokerAddress, *, quick: bool) -> dict[str, Any]:
    """Saturation msg/s (publisher → subscriber) and round-trip latency at a moderate rate."""
    size = sealed_sample_size()
    count = 20_000 if quick else 60_000
    url = broker.url()
    sub = await run_role("baseline", "sub", "--broker", url, "--count", str(count))
    async with sub:
        await sub.expect("ready", 15)
        pub = await run_role("baseline", "pub", "--broker", url, "--count", str(count),
                             "--size", str(size), "--inflight", str(INFLIGHT))
        async with pub:
            published = await pub.expect("done", 120)
        received = await sub.expect("done", 30)
    rate_hz, duration = 500.0, (2.0 if quick else 5.0)
    echo = await run_role("baseline", "sub", "--broker", url, "--count",
                          str(int(rate_hz * duration)), "--echo")
    async with echo:
        await echo.expect("ready", 15)
        pinger = await run_role("baseline", "ping", "--broker", url, "--rate", str(rate_hz),
                                "--duration", str(duration), "--size", str(size))
        async with pinger:
            rtt = await pinger.expect("done", duration + 30)
        await echo.expect("done", 30)
    lost = published["sent"] - received["received"]
    return {
        "payload_bytes": size,
        "qos": 1,
        "inflight": INFLIGHT,
        "messages": count,
        "published": published["sent"],
        "publish_errors": published["errors"],
        "received": received["received"],
        "lost": lost,
        "publisher_msgs_per_s": published["rate"],
        "subscriber_msgs_per_s": received["rate"],
        # What passed end to end per second: the slower of the two sides.
        "msgs_per_s": min(published["rate"], received["rate"]),
        "rtt_rate_hz": rate_hz,
        "rtt_p50_ms": rtt["p50_ms"],
        "rtt_p99_ms": rtt["p99_ms"],
        "rtt_max_ms": rtt["max_ms"],
        "rtt_samples": rtt["answered"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.baseline")
    parser.add_argument("role", choices=["pub", "sub", "ping"])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--inflight", type=int, default=INFLIGHT)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--echo", action="store_true")
    parser.add_argument("--idle", type=float, default=5.0)
    a = parser.parse_args(argv)
    broker = BrokerAddress.parse(a.broker)
    if a.role == "sub":
        asyncio.run(subscriber(broker, a.count, a.idle, a.echo))
    elif a.role == "pub":
        asyncio.run(publisher(broker, a.count, a.size, a.inflight))
    else:
        asyncio.run(ping(broker, a.rate, a.duration, a.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
