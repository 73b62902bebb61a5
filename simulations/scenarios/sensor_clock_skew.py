"""A_RTC (4.1): the sensor's real-time clock set wrong - behind, then ahead."""

from __future__ import annotations

import asyncio
import sqlite3

from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial
from wire.messages import MeasurementRecord

SKEW_S = 5.0  # well beyond the approved maximum transmission delay (2 s)


def _stored_delays(t: Trial, last: int) -> list[float]:
    """received_at - created_at of the newest stored records (both clocks are kept: L4)."""
    with sqlite3.connect(t.dir / "storage" / "records.sqlite") as c:
        rows = c.execute("SELECT leaf FROM records ORDER BY seq DESC LIMIT ?", (last,)).fetchall()
    out = []
    for (leaf,) in rows:
        r = MeasurementRecord.model_validate_json(bytes(leaf))
        out.append(round(r.received_at - r.created_at, 2))
    return out


@scenario(
    id="sensor-clock-skew",
    title="Sensor clock set behind, then ahead",
    vectors=["A_RTC"],
    requirements=["T7"],
    architectures=["4.1"],
    testbed=TestbedSpec(
        rate_hz=5.0, supervised=("storage", "processing", "mother-unit"), managed=("sensor-1",)
    ),
    expectations={
        "behind_flagged": f"samples stamped {SKEW_S:.0f} s in the past are flagged late (T7)",
        "delay_shown": "the T7 maximum in the state shows the delay",
        "both_times_stored": "stored records keep the sensor's and the mother unit's time, "
        "so the skew stays visible to a verifier",
        "ahead_flagged": f"samples stamped {SKEW_S:.0f} s in the future are flagged too",
    },
    budget_s=30.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker power-cycles sensor-1 with its clock set 5 s behind (the sensor
            runs with --clock-offset-s -5).
    +2 s    every new sample is older than the approved maximum delay on arrival: counted
            late, the T7 maximum in the state shows ~5000 ms, and the stored records
            carry both clocks (received - created ~ 5 s).
    +2 s    again with the clock 5 s ahead: samples arrive "from the future" - a wrong
            RTC that must be flagged as well.
    """
    before = t.observer.state
    assert before is not None
    base = t.live.spec.argv_for("sensor-1")
    await t.live.stop("sensor-1")
    t0 = t.attack_started("sensor clock 5 s behind")
    await t.live.spawn("sensor-1", (*base, "--clock-offset-s", str(-SKEW_S)))
    await asyncio.sleep(2.0)
    behind = await t.settle(0.6)
    assert behind is not None
    late = behind.counters.get("late", 0) - before.counters.get("late", 0)
    seen = t.observer.first_state_after(t0, lambda s: s.counters.get("late", 0) > 0)
    if seen is not None:
        t.detected(seen.at, "T7: samples counted late")
    accepted = behind.counters.get("accepted", 0) - before.counters.get("accepted", 0)
    t.expect(
        "behind_flagged",
        measured={"late": late, "accepted_or_refused": accepted + behind.rejected.get("late", 0)},
        held=late >= 5,
        expected=">= 5 samples flagged late",
    )
    t7 = behind.t7_ms.get("max", 0.0)
    t.expect(
        "delay_shown",
        measured=behind.t7_ms,
        held=t7 >= SKEW_S * 1000 * 0.9,
        expected=f"max >= {SKEW_S * 900:.0f} ms",
    )
    delays = _stored_delays(t, 5)
    t.expect(
        "both_times_stored",
        measured=delays,
        held=bool(delays) and all(d >= SKEW_S * 0.9 for d in delays),
        expected=f"received_at - created_at >= {SKEW_S * 0.9} s for the newest records",
    )
    await t.live.stop("sensor-1")
    t.mark("sensor clock 5 s ahead")
    ahead_before = t.observer.state or behind
    await t.live.spawn("sensor-1", (*base, "--clock-offset-s", str(SKEW_S)))
    await asyncio.sleep(2.0)
    ahead = await t.settle(0.6)
    assert ahead is not None
    flagged = {
        k: ahead.counters.get(k, 0) - ahead_before.counters.get(k, 0)
        # Not "late": samples of the clock-behind period may still arrive late now.
        for k in ("clock_ahead", "future")
    }
    for reason in ahead.rejected:  # a rejection because of a clock ahead, under any name
        if any(w in reason for w in ("future", "clock_ahead")):
            flagged[f"rejected.{reason}"] = ahead.rejected[reason] - ahead_before.rejected.get(
                reason, 0
            )
    t.expect(
        "ahead_flagged",
        measured={**flagged, "t7_ms": ahead.t7_ms},
        held=any(v > 0 for v in flagged.values()),
        expected="> 0 samples flagged (counted or rejected)",
    )
