"""A_CRYPTO_RET: sensor-1's pairing key, extracted, used by another sensor."""

from __future__ import annotations

import asyncio
import shutil

from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial


@scenario(
    id="sensor-key-reuse",
    title="Pairing key of one sensor used by another",
    vectors=["A_CRYPTO_RET"],
    requirements=["T5"],
    architectures=["4.1"],
    testbed=TestbedSpec(sensors=2),
    expectations={
        "nothing_accepted": "no sample sealed by sensor-2 under sensor-1's key is accepted",
        "rejected_counted": "its samples are rejected and counted (not paired / wrong slot)",
        "sensor_1_unaffected": "sensor-1 goes on being accepted",
    },
    budget_s=25.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker extracted sensor-1's pairing store with the passphrase (worst
            case) and puts it on sensor-2, an approved but unpaired sensor: sensor-2 now
            "holds" sensor-1's pairing key, and starts it.
    +3 s    none of sensor-2's samples is accepted: the key is bound to sender sensor-1
            (HKDF over sender and recipient) and sensor-2 is no paired sensor: its
            envelopes are refused; sensor-1 is unaffected.
    """
    before = t.observer.state
    assert before is not None
    shutil.copy2(t.dir / "sensor-1" / "pairings.json", t.dir / "sensor-2" / "pairings.json")
    sent_1 = t.observer.status_counter("sensor-1", "sent")
    t0 = t.attack_started("sensor-1's pairing store on sensor-2")
    await t.live.spawn("sensor-2")
    await asyncio.sleep(3.0)
    after = await t.settle(0.6)
    assert after is not None
    rejected = {
        r: after.rejected.get(r, 0) - before.rejected.get(r, 0)
        for r in ("not_paired", "wrong_topic", "authentication")
    }
    if sum(rejected.values()):
        seen = t.observer.first_state_after(t0, lambda s: sum(s.rejected.values()) > 0)
        if seen is not None:
            t.detected(seen.at, f"rejected: {rejected}")
    shown = [i for i in t.observer.indications_after(t0) if i.sensor_id == "sensor-2"]
    accepted = after.counters.get("accepted", 0) - before.counters.get("accepted", 0)
    sent = t.observer.status_counter("sensor-1", "sent") - sent_1
    t.expect(
        "nothing_accepted",
        measured={
            "indications_of_sensor_2": len(shown),
            "accepted": accepted,
            "sensor_1_sent": sent,
        },
        held=not shown and accepted <= sent + 3,
        expected="0 indications of sensor-2; accepted <= what sensor-1 sent",
    )
    t.expect(
        "rejected_counted",
        measured=rejected,
        held=rejected["not_paired"] + rejected["wrong_topic"] + rejected["authentication"] > 0,
        expected="> 0",
    )
    t.expect(
        "sensor_1_unaffected",
        measured={"accepted": accepted, "state": after.state},
        held=accepted > 0,
        expected="> 0 accepted",
    )
