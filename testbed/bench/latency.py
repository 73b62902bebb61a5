"""Section 3, pipeline latency: sample creation at the sensor → the store's acknowledgement.

At fixed offered loads (open loop) the observer maps each record's sequence
number to its sample's creation time (from the record batches it sees on the
broker) and takes the time the store's acknowledgement covering it arrived.
Both clocks are this machine's. T7 (the transmission delay at the mother unit)
comes from the same records: each carries the sample's creation time and the
time the mother unit received it, signed into the records log.
"""

from __future__ import annotations

import time
from typing import Any

from testbed.bench.instrument import BenchInstrument
from testbed.bench.stats import percentile, summarize_ms

FULL_LOADS = (100, 1_000, 5_000)
QUICK_LOADS = (100, 1_000)


def offered_loads(quick: bool, saturation: float | None) -> list[int]:
    """The issue's loads; one above what the pipeline takes (measured in the same run)
    is replaced by 80 % of its saturation rate, so a backlog does not make it a
    throughput test."""
    loads = list(QUICK_LOADS if quick else FULL_LOADS)
    if saturation:
        fits = int(0.8 * saturation / 100) * 100
        # 100 and 1,000/s are the reference loads: always measured.
        loads = sorted({r if r <= max(fits, 1_000) else fits for r in loads} - {0})
    return loads


async def run_latency(
    inst: BenchInstrument, *, quick: bool, saturation: float | None = None
) -> dict[str, Any]:
    sensors = min(inst.sensors, 10)
    duration = 2.5 if quick else 8.0
    loads: list[dict[str, Any]] = []
    for rate in offered_loads(quick, saturation):
        await inst.drain(60.0)
        inst.observer.start_latency()
        u0, t0 = inst.observer.stored_upto, time.monotonic()
        result = await inst.command(duration + 30, op="load", count=sensors, rate_hz=rate,
                                    duration_s=duration, window=10_000)
        await inst.drain(30.0)
        await inst.wait_stored(u0 + result["created"], 10.0)
        elapsed = time.monotonic() - t0
        latencies, t7 = inst.observer.stop_latency()
        loads.append({
            "offered_per_s": rate,
            "created": result["created"],
            "achieved_per_s": result["created"] / result["elapsed_s"],
            "stored": inst.observer.stored_upto - u0,
            "seconds": elapsed,
            **summarize_ms(latencies),
            "t7_p50_ms": percentile(t7, 0.5),
            "t7_p99_ms": percentile(t7, 0.99),
            "t7_max_ms": max(t7) if t7 else 0.0,
        })
    inst.check_alive()
    return {"sensors": sensors, "loads": loads}
