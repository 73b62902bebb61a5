"""Replay of a paired sensor's captured pairing hello: no pairing, and no denial of service."""

from __future__ import annotations

import asyncio

from simulations.registry import scenario
from simulations.trial import Trial


@scenario(
    id="pairing-hello-replay",
    title="Captured pairing hello of the paired sensor replayed",
    vectors=["A_Tampering_and_Injection", "A_WEB_DOS"],
    requirements=["P8/U8", "T3"],
    architectures=["4.1"],
    expectations={
        "no_pairing": "the replay pairs nothing: event counter and pairing unchanged",
        "not_inhibited": "a replayed hello (a nonce already used) does not stop the "
        "instrument: measuring goes on",
        "replay_counted": "the replay is recognised and counted (rejected.pairing_replay)",
    },
    budget_s=25.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker (the mother unit's broker password: it reads the pairing topics)
            records sensor-1's hello during a genuine re-verification.
    +2 s    it replays the hello on sensor-1's pairing topic (sensor-1's broker password).
    +3 s    no pairing was made; and one old message must not be enough to inhibit the
            instrument for good: the hello's nonce was used before, so it is a replay,
            not a sensor asking to be paired again.
    """
    topic = t.topics.sensor_pairing("sensor-1")
    async with (
        t.attacker("tap-pairing", credentials="mother-unit") as tap,
        asyncio.TaskGroup() as tg,
    ):
        recording = tg.create_task(
            tap.capture(topic, 1, timeout_s=8.0, keep=lambda _, p: b'"hello"' in p),
            name="record-hello",
        )
        await asyncio.sleep(0.3)
        repaired = await t.live.pair("sensor-1", reason="periodic re-verification")
    hellos = recording.result()
    t.mark("captured", hellos=len(hellos), repaired=repaired.ok)
    await asyncio.sleep(1.0)
    before = await t.settle(0.6)
    assert before is not None
    assert hellos, "no hello recorded"
    t0 = t.attack_started("hello replayed")
    async with t.attacker("replay-hello", credentials="sensor-1") as a:
        for _, payload in hellos:
            await a.publish(topic, payload)
    await asyncio.sleep(1.5)
    after = await t.settle(0.6)
    assert after is not None
    inhibited = t.observer.first_state_after(t0, lambda s: s.state == "INHIBITED")
    counted = after.rejected.get("pairing_replay", 0) - before.rejected.get("pairing_replay", 0)
    seen = t.observer.first_state_after(t0, lambda s: s.rejected.get("pairing_replay", 0) > 0)
    if seen is not None:
        t.detected(seen.at, "rejected: pairing_replay")
    t.expect("replay_counted", measured=counted, held=counted >= len(hellos), expected=">= 1")
    t.expect(
        "no_pairing",
        measured={
            "event_counter": [before.event_counter, after.event_counter],
            "paired": after.paired_sensors,
        },
        held=before.event_counter == after.event_counter and after.paired_sensors == ["sensor-1"],
        expected="unchanged",
    )
    t.expect(
        "not_inhibited",
        measured={"state": after.state, "reasons": after.reasons},
        held=inhibited is None and after.state != "INHIBITED",
        expected="never INHIBITED",
    )
