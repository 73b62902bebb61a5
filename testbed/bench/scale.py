"""Section 4, scale: one mother unit, 1 … N paired sensors at 1 Hz each.

Each step runs the first ``n`` sensors (each paired by its own authorized
ceremony at start) at 1 sample/s with their retained status heartbeats (T8),
then waits until every sample is acknowledged. Reported: the accepted rate, the
mother unit's CPU time per sample and its resident memory, and whether every
sample made it into the store (lost = created − stored; must be 0).
"""

from __future__ import annotations

import time
from typing import Any

from testbed.bench.instrument import BenchInstrument

FULL_STEPS = (1, 10, 100, 1_000)
QUICK_STEPS = (1, 10, 100)


async def run_scale(inst: BenchInstrument, *, quick: bool) -> dict[str, Any]:
    duration = 3.0 if quick else 10.0
    steps: list[dict[str, Any]] = []
    for n in [s for s in (QUICK_STEPS if quick else FULL_STEPS) if s <= inst.sensors]:
        await inst.drain(30.0)
        before = await inst.state()
        u0, cpu0, t0 = inst.observer.stored_upto, inst.mother_sample(), time.monotonic()
        result = await inst.command(duration + 60, op="load", count=n, rate_hz=float(n),
                                    duration_s=duration, window=10_000, heartbeat_s=1.0)
        drained = await inst.drain(30.0)
        complete = await inst.wait_stored(u0 + result["created"], 10.0)
        cpu1, t1 = inst.mother_sample(), time.monotonic()
        after = await inst.state()
        stored = inst.observer.stored_upto - u0

        def counter(state: Any, name: str) -> int:
            return int(state.counters.get(name, 0)) if state is not None else 0

        accepted = counter(after, "accepted") - counter(before, "accepted")
        steps.append({
            "sensors": n,
            "rate_per_sensor_hz": 1.0,
            "seconds": result["elapsed_s"],
            "created": result["created"],
            "stored": stored,
            "lost": result["created"] - stored,
            "complete": bool(complete and drained["unacked"] == 0),
            "accepted_per_s": stored / result["elapsed_s"],
            "mother_accepted": accepted,
            "mother_cpu_us_per_sample": (cpu1.cpu_s - cpu0.cpu_s) / stored * 1e6 if stored else 0,
            "mother_cpu_share": (cpu1.cpu_s - cpu0.cpu_s) / (t1 - t0),
            "mother_rss_mib": cpu1.rss_bytes / 2**20,
            "gaps_unrecoverable": counter(after, "gaps_unrecoverable"),
            "rejected": counter(after, "rejected"),
            "instrument_state": after.state if after is not None else "?",
        })
    inst.check_alive()
    return {"paired_sensors": inst.sensors, "pairing_s": inst.pairing_s, "steps": steps}
