"""4.1: the paired sensor replaced by a similar, unpaired unit (A_Spoofing, P8/U8)."""

from __future__ import annotations

import asyncio

from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial

SPARE = "sensor-spare-1"  # certified by the manufacturer, never paired (provisioning)


@scenario(
    id="similar-sensor-swapped",
    title="Paired sensor replaced by a similar, unpaired unit",
    vectors=["A_Spoofing", "A_SENSOR_SWAP"],
    requirements=["P8/U8", "T4", "MID-8.2"],
    architectures=["4.1"],
    testbed=TestbedSpec(supervised=("storage", "processing", "mother-unit"), managed=("sensor-1",)),
    expectations={
        "inhibited_within_1s": "the instrument is INHIBITED within 1 s of the similar unit's hello",
        "none_indicated": "no value of the similar unit reaches the indication",
        "logbook_entry": "a sensor_rejected entry names the similar unit",
        "no_sample_accepted": "not one sample of the similar unit is accepted",
    },
    budget_s=20.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0    sensor-1 (paired at initial verification) measures; OPERATIONAL.
    t0+0  the attacker unplugs sensor-1 (SIGTERM) and plugs a similar unit into its slot:
          the manufacturer's spare sensor-spare-1, genuine certificate, never paired,
          publishing samples sealed under a key of its own (--send-unpaired) and
          saying hello on sensor-1's pairing topic.
    +1 s  the instrument must be INHIBITED ("similar unit ... authorized pairing required").
    +3 s  the spare has sent ~15 samples: none accepted, none indicated; logbook entry.
    """
    accepted_before = t.observer.counter("accepted")
    await t.live.stop("sensor-1")
    t0 = t.attack_started("similar unit swapped into slot sensor-1")
    await t.live.spawn(
        "sensor-1",
        (*t.live.spec.argv_for("sensor-1"), "--identity", SPARE, "--send-unpaired"),
        name="similar-unit",
    )
    seen = await t.wait_state(lambda s: s.state == "INHIBITED", timeout_s=8.0)
    inhibited = t.observer.first_state_after(t0, lambda s: s.state == "INHIBITED")
    # Detection is measured from the similar unit's first hello (its start takes ~1 s).
    hello_at = _first_online(t, "sensor-1", t0)
    delay = None if inhibited is None else round(inhibited.at - (hello_at or t0), 3)
    if inhibited is not None:
        t.detected(inhibited.at, f"INHIBITED: {'; '.join(inhibited.message.reasons)}")
    t.expect(
        "inhibited_within_1s",
        measured=delay,
        held=seen is not None and delay is not None and delay <= 1.0,
        expected="<= 1.0 s after the unit came online",
    )
    await asyncio.sleep(3.0)
    state = await t.settle(0.6)
    foreign = [i for i in t.observer.indications_after(t0) if i.sensor_id != "sensor-1"]
    shown_after = t.observer.indications_after(t0 + 0.5)
    t.expect(
        "none_indicated",
        measured={"foreign": len(foreign), "indications_after_swap": len(shown_after)},
        held=not foreign and not shown_after,
        expected="0 indications",
    )
    accepted = (state.counters.get("accepted", 0) if state else 0) - accepted_before
    spare_sent = t.observer.status_counter("sensor-1", "sent")
    t.expect(
        "no_sample_accepted",
        measured={
            "accepted_since_swap": accepted,
            "similar_unit_sent": spare_sent,
            "rejected": dict(state.rejected) if state else {},
        },
        held=accepted == 0 and spare_sent > 0,
        expected="0 accepted of > 0 sent",
    )
    entries = [
        e for e in t.logbook_since_ready({"sensor_rejected"}) if e.data.get("device_id") == SPARE
    ]
    t.expect(
        "logbook_entry",
        measured=[e.data for e in entries],
        held=len(entries) >= 1,
        expected=">= 1 sensor_rejected entry",
    )


def _first_online(t: Trial, component_id: str, since: float) -> float | None:
    for seen in t.observer.status_log:
        if seen.at >= since and seen.message.component_id == component_id and seen.message.online:
            return seen.at
    return None
