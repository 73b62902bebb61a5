"""Section 2, pipeline throughput: samples/s sealed, accepted, converted, stored and acknowledged.

Every defence is on: sealed samples under pairing keys, the mother unit's exact
sequence tracking, processing with signed results checked by the mother unit,
the records Merkle log with signed checkpoints, the store's durable commit. The
load generator runs closed loop: each sensor keeps at most ``window`` samples
unacknowledged (its outbox), so it measures as fast as the instrument takes it.
The rate counted is what the store acknowledged during the measuring window.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from testbed.bench import profile
from testbed.bench.instrument import BenchInstrument
from testbed.bench.stats import sample_process

# Samples outstanding over all sensors: below the broker's per-client queue
# (Mosquitto max_queued_messages 1000 + in flight), so no message is dropped.
TOTAL_WINDOW = 3000


async def run_pipeline(
    inst: BenchInstrument, *, quick: bool, profile_to: Path | None = None
) -> dict[str, Any]:
    """Throughput at saturation; with ``profile_to`` (a path stem) also a py-spy profile
    of the mother unit during the measuring window (``<stem>.svg``, ``.txt``)."""
    sensors = min(inst.sensors, 10)
    window = max(20, TOTAL_WINDOW // sensors)
    warm_s, measure_s = (1.5, 4.0) if quick else (3.0, 12.0)
    await inst.command(warm_s + 30, op="load", count=sensors, rate_hz=0, duration_s=warm_s,
                       window=window)
    u0, cpu0, t0 = inst.observer.stored_upto, inst.mother_sample(), time.monotonic()
    cpus0 = {n: inst_sample(inst, n) for n in inst.components}
    load = inst.command(measure_s + 30, op="load", count=sensors, rate_hz=0,
                        duration_s=measure_s, window=window)
    profiled = False
    if profile_to is None:
        result = await load
    else:
        raw = profile_to.with_suffix(".collapsed")
        svg = profile_to.with_suffix(".svg")
        result, profiled = await asyncio.gather(
            load, profile.record(inst.mother_pid, measure_s, svg, raw)
        )
        if profiled:
            profile_to.with_suffix(".txt").write_text(
                profile.summarize_collapsed(raw.read_text()), encoding="utf-8"
            )
            raw.unlink()
    u1, cpu1, t1 = inst.observer.stored_upto, inst.mother_sample(), time.monotonic()
    cpus1 = {n: inst_sample(inst, n) for n in inst.components}
    drained = await inst.drain(30.0)
    inst.check_alive()
    stored = u1 - u0
    elapsed = t1 - t0
    return {
        "sensors": sensors,
        "window_per_sensor": window,
        "seconds": elapsed,
        "samples_created": result["created"],
        "records_acked": stored,
        "samples_per_s": stored / elapsed if elapsed > 0 else 0.0,
        "mother_cpu_us_per_sample": (cpu1.cpu_s - cpu0.cpu_s) / stored * 1e6 if stored else 0.0,
        "cpu_share": {n: (cpus1[n] - cpus0[n]) / elapsed for n in cpus0},
        "retransmitted": result["retransmitted"],
        "publish_errors": result["publish_errors"],
        "unacked_after_drain": drained["unacked"],
        "profile": str(profile_to.with_suffix(".svg")) if profiled and profile_to else None,
    }


def inst_sample(inst: BenchInstrument, name: str) -> float:
    return sample_process(inst.components[name].pid).cpu_s
