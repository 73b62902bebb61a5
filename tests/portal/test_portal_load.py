"""A_WEB_DOS: a flooded portal never slows the legally relevant path.

Story: the instrument runs with a 20 Hz sensor. For one window nobody uses the
portal; for a second window of the same length a load generator (its own
process, bounded in time and requests, from its own loopback address) floods
the portal with keep-alive requests. The mother unit's own counters - samples
accepted, records acknowledged by the store after their durable commit - give
the pipeline's rates in both windows, each measured between the first and the
last retained status of the window (the status carries its own time). The
loaded rates must stay within 10 % of the unloaded ones, the flood must have
been a real one (most requests answered 429 by the rate limit), and another
client must still get its answer from the portal during the flood.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from portal.portal_support import client_for, portal_url
from testbed.testing import TestbedRun
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

WINDOW_S = 8.0
TOLERANCE = 0.10
LOADGEN = Path(__file__).with_name("portal_loadgen.py")


@dataclass(frozen=True)
class Rates:
    accepted: float
    acked: float
    points: int


async def pipeline_rates(run: TestbedRun, window_s: float) -> Rates:
    """Rates from the mother unit's heartbeats (time, counters) during ``window_s``."""
    seen: list[ComponentStatus] = []
    topic = run.topics.status("mother-unit")
    async with client_for(run.broker_address, "portal-load-observer") as client:
        await client.subscribe(topic, qos=1)
        end = time.monotonic() + window_s
        async for message in client.messages:
            if time.monotonic() > end:
                break
            if message.retain:
                continue  # the retained one is from before the window
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                status = decode(ComponentStatus, payload, topic)
            except RejectedPayload:
                continue
            if status.online:
                seen.append(status)
    assert len(seen) >= window_s / 2, f"only {len(seen)} heartbeats in {window_s} s"
    first, last = seen[0], seen[-1]
    dt = last.time - first.time

    def rate(counter: str) -> float:
        return (last.counters.get(counter, 0) - first.counters.get(counter, 0)) / dt

    return Rates(rate("accepted"), rate("records_acked"), len(seen))


async def other_client_latency(host: str, port: int) -> float:
    """One request of an ordinary visitor (127.0.0.1) while the flood runs."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /api/snapshot HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    await reader.read()
    writer.close()
    assert head.startswith(b"HTTP/1.1 200"), head[:100]
    return time.monotonic() - start


async def test_flooding_the_portal_does_not_slow_the_pipeline(
    portal_testbed: TestbedRun,
) -> None:
    run = portal_testbed
    url = urlsplit(portal_url(run))
    assert url.hostname is not None
    assert url.port is not None
    await asyncio.sleep(3.0)  # settle: earlier tests re-paired the sensor, sent commands

    unloaded = await pipeline_rates(run, WINDOW_S)

    load = await asyncio.create_subprocess_exec(
        sys.executable, str(LOADGEN), "--host", url.hostname, "--port", str(url.port),
        "--source", "127.0.0.2", "--duration", str(WINDOW_S + 1.0), "--connections", "8",
        "--max-requests", "100000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.sleep(0.5)  # the flood is on before the window opens
        latency_task = asyncio.create_task(other_client_latency(url.hostname, url.port))
        loaded = await pipeline_rates(run, WINDOW_S)
        latency = await latency_task
        async with asyncio.timeout(20):
            out, err = await load.communicate()
    finally:
        if load.returncode is None:
            load.kill()
            await load.wait()
    assert load.returncode == 0, err.decode()[-2000:]
    flood = json.loads(out.decode().strip().splitlines()[-1])

    figures = {
        "unloaded": unloaded.__dict__, "loaded": loaded.__dict__, "flood": flood,
        "other_client_latency_s": round(latency, 3),
    }
    print(f"portal load test: {json.dumps(figures)}")
    assert flood["requests"] >= 2000, f"not a flood: {flood}"
    assert flood["statuses"].get("429", 0) > flood["requests"] / 2, flood  # A_WEB_DOS limit
    assert latency < 5.0
    for name in ("accepted", "acked"):
        base, under = getattr(unloaded, name), getattr(loaded, name)
        assert base > 0, figures
        assert abs(under - base) <= TOLERANCE * base, (name, figures)
