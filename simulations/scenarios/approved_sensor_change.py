"""4.1.4: a change between two approved sensors leaves evidence (logbook, event counter)."""

from __future__ import annotations

import asyncio
import time

from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial


@scenario(
    id="approved-sensor-change",
    title="Change between approved sensors: authorized, logged and counted",
    vectors=["A_SENSOR_SWAP"],
    requirements=["P8/U8", "MID-8.2", "MID-8.3"],
    architectures=["4.1"],
    testbed=TestbedSpec(
        sensors=2,
        supervised=("storage", "processing", "mother-unit"),
        managed=("sensor-1",),
    ),
    expectations={
        "pairing_logged": "the pairing of sensor-2 is a logbook entry naming the sensor "
        "paired before",
        "counter_raised": "the event counter rises by one per pairing and un-pairing",
        "new_sensor_measures": "sensor-2's measurements are accepted and indicated",
        "old_sensor_refused": "sensor-1, un-paired, is no longer accepted",
    },
    budget_s=25.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      sensor-1 measures. A technician installs sensor-2, the instrument's other
            approved sensor (its identifier is in the type approval).
    t0+1s   the verification officer authorizes and runs the pairing of sensor-2
            (`testbed pair --sensor sensor-2`) and un-pairs sensor-1 (`testbed unpair`).
    +3 s    logbook: pairing (other_paired: sensor-1) and unpairing entries; event counter
            +2; sensor-2's values are indicated; sensor-1's samples are refused.
    """
    before = t.observer.state
    assert before is not None
    await t.live.spawn("sensor-2")
    t.attack_started("approved sensor-2 installed")
    await t.live.wait_online(t.observer, ["sensor-2"], 8.0)
    paired = await t.live.pair("sensor-2", reason="sensor exchange")
    t.mark("paired", ok=paired.ok, message=paired.message)
    unpaired = await _unpair(t, "sensor-1")
    t.mark("unpaired", ok=unpaired)
    if paired.ok:
        # The pairing is in the logbook (fsync'd) before the officer is told.
        t.detected(time.monotonic(), "logbook: pairing of sensor-2, event counter +1")
    await asyncio.sleep(2.0)
    after = await t.settle(0.6)
    assert after is not None
    pairings = [
        e for e in t.logbook_since_ready({"pairing"}) if e.data.get("peer_id") == "sensor-2"
    ]
    t.expect(
        "pairing_logged",
        measured=[e.data.get("other_paired") for e in pairings],
        held=bool(pairings) and "sensor-1" in (pairings[0].data.get("other_paired") or []),
        expected="1 pairing entry, other_paired includes sensor-1",
    )
    t.expect(
        "counter_raised",
        measured={"before": before.event_counter, "after": after.event_counter},
        held=after.event_counter == before.event_counter + 2,
        expected="+2 (pairing, un-pairing)",
    )
    shown = [
        i for i in t.observer.indications_after(t.attack_at or 0.0) if i.sensor_id == "sensor-2"
    ]
    t.expect(
        "new_sensor_measures",
        measured={"indications_of_sensor_2": len(shown), "paired": after.paired_sensors},
        held=bool(shown) and after.paired_sensors == ["sensor-2"],
        expected="> 0 indications; paired = [sensor-2]",
    )
    t.expect(
        "old_sensor_refused",
        measured={"not_paired_rejections": after.rejected.get("not_paired", 0)},
        held=after.rejected.get("not_paired", 0) > before.rejected.get("not_paired", 0),
        expected="> 0 samples of sensor-1 rejected as not paired",
    )


async def _unpair(t: Trial, sensor: str) -> bool:
    from testbed.pairing_ceremony import run_ceremony  # noqa: PLC0415

    result = await run_ceremony(
        t.dir, t.live.address, sensor, command="unpair", reason="un-pairing", timeout_s=8.0
    )
    return result.ok
