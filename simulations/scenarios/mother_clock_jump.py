"""A_RTC: the mother unit's real-time clock jumped forward, then back."""

from __future__ import annotations

import asyncio
import time

from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial
from wire.messages import InstrumentState

JUMP_S = 30.0


def _noticed(after: InstrumentState, not_operational: InstrumentState | None) -> dict[str, object]:
    """Time-related evidence of one mother unit process (its counters start at zero)."""
    return {
        "late": after.counters.get("late", 0),
        "stale_result": after.rejected.get("stale_result", 0),
        "converted": after.counters.get("converted", 0),
        "said": None
        if not_operational is None
        else [not_operational.state, *not_operational.reasons],
    }


def _detected(n: dict[str, object]) -> bool:
    late, stale = n["late"], n["stale_result"]
    assert isinstance(late, int)
    assert isinstance(stale, int)
    return (late > 0 or stale > 0) and n["said"] is not None


@scenario(
    id="mother-clock-jump",
    title="Mother unit clock jumped forward, then back",
    vectors=["A_RTC"],
    requirements=["T7"],
    architectures=["all"],
    testbed=TestbedSpec(
        rate_hz=5.0, managed=("mother-unit",), supervised=("storage", "processing", "sensor-1")
    ),
    expectations={
        "forward_noticed": f"clock {JUMP_S:.0f} s ahead: samples late and/or processing results "
        "stale, and the instrument says it is not OPERATIONAL",
        "back_noticed": f"clock {JUMP_S:.0f} s behind: the same",
        "nothing_lost": "after the clock is right again, the instrument is OPERATIONAL and "
        "measures",
    },
    budget_s=40.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker restarts the mother unit with its RTC 30 s ahead
            (--clock-offset-s 30).
    +3 s    the mother unit's clock disagrees with the sensor's (samples 30 s "late") and
            with the processing's (results 30 s old: stale): the instrument must say so
            (DEGRADED or INHIBITED with a reason), not indicate as if all were well.
    +3 s    restarted with the RTC 30 s behind: results from "the future", again noticed.
    +3 s    restarted with the right time: OPERATIONAL again, measuring.
    """
    base = t.live.spec.argv_for("mother-unit")
    outcomes = []
    for label, offset in (("forward", JUMP_S), ("back", -JUMP_S)):
        await t.live.stop("mother-unit")
        at = t.attack_started(f"mother unit clock {offset:+.0f} s") if label == "forward" else None
        t.mark(f"clock {offset:+.0f} s")
        child = await t.live.spawn("mother-unit", (*base, "--clock-offset-s", str(offset)))
        since = time.monotonic()
        await asyncio.sleep(3.0)
        after = await t.settle(0.6)
        assert after is not None
        said = t.observer.first_state_after(since, lambda s: s.state != "OPERATIONAL")
        noticed = _noticed(after, None if said is None else said.message)
        noticed["pid"] = child.pid
        outcomes.append(noticed)
        if at is not None and _detected(noticed):
            seen = t.observer.first_state_after(at, lambda s: s.state != "OPERATIONAL")
            if seen is not None:
                t.detected(seen.at, f"{seen.message.state}: {'; '.join(seen.message.reasons)}")
        t.expect(
            f"{label}_noticed",
            measured=noticed,
            held=_detected(noticed),
            expected="late or stale_result > 0, and a state other than OPERATIONAL with its reason",
        )
    await t.live.stop("mother-unit")
    await t.live.spawn("mother-unit", base)
    state = await t.wait_state(
        lambda s: s.state == "OPERATIONAL" and s.counters.get("accepted", 0) > 0, timeout_s=8.0
    )
    t.expect(
        "nothing_lost",
        measured=None
        if state is None
        else {"state": state.state, "accepted": state.counters.get("accepted")},
        held=state is not None,
        expected="OPERATIONAL, accepting",
    )
