"""4.1: forged, bit-flipped and replayed samples injected by an ordinary client (A_DATA_GEN)."""

from __future__ import annotations

import asyncio

from simulations.forge import FORGED_VM, bit_flipped, forged_sample, junk, resequenced, wrong_shape
from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial

N = 20  # of each kind


@scenario(
    id="forged-sample-injection",
    title="Forged, bit-flipped, relabelled and replayed samples injected on the sensor topic",
    vectors=["A_Tampering_and_Injection", "A_DATA_GEN", "A_Spoofing"],
    requirements=["T2", "T3", "T4", "T6", "P8/U8"],
    architectures=["4.1"],
    testbed=TestbedSpec(rate_hz=5.0),
    expectations={
        "none_accepted": "no injected sample is accepted: the accepted count grows only by "
        "what the genuine sensor sent",
        "none_indicated": f"the forged value {FORGED_VM} never reaches the indication",
        "counted_by_reason": "every injected message is rejected and counted under its reason "
        "(authentication, duplicate, malformed, schema)",
        "still_operational": "the genuine sensor's data keep flowing; the instrument is "
        "never INHIBITED by the injection",
    },
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker listens on sensor-1's data topic (with the mother unit's broker
            password, stolen; a sniffer on the wire sees the same bytes) and captures
            5 genuine sealed samples.
    t0+1s   with sensor-1's broker password (read out of an opened sensor) it publishes on
            sensor-1's data topic: 20 samples with Vm = 987654.321 sealed under a key of
            its own, 20 captured samples with one ciphertext bit flipped, 20 captured
            samples relabelled with a new sequence number, 20 exact replays, 10 non-JSON
            and 10 wrong-shape messages.
    +2 s    nothing injected was accepted or indicated; each kind is counted under its
            reason; the genuine samples went on being accepted.
    """
    topic = t.topics.sensor_data("sensor-1")
    async with t.attacker("sniffer", credentials="mother-unit") as sniffer:
        captured = [p for _, p in await sniffer.capture(topic, 5, timeout_s=4.0)]
    before = t.observer.state
    assert before is not None
    assert captured, "no genuine traffic to work with"
    sent_before = t.observer.status_counter("sensor-1", "sent")
    t0 = t.attack_started("injection on " + topic)
    async with t.attacker("injector", credentials="sensor-1") as a:
        for i in range(N):
            await a.publish(topic, forged_sample(topic, "sensor-1", 1_000_000 + i))
            await a.publish(topic, bit_flipped(captured[i % len(captured)], bit=8 * i + 3))
            await a.publish(topic, resequenced(captured[i % len(captured)], 2_000_000 + i))
            await a.publish(topic, captured[i % len(captured)])
        for i in range(N // 2):
            await a.publish(topic, junk(i))
            await a.publish(topic, wrong_shape(i))
    t.mark("injected", messages=a.published)
    first = await t.wait_state(
        lambda s: s.rejected.get("authentication", 0) > before.rejected.get("authentication", 0),
        timeout_s=3.0,
    )
    if first is not None:
        seen = t.observer.first_state_after(t0, lambda s: s is first)
        if seen is not None:
            t.detected(seen.at, "rejected: authentication")
    await asyncio.sleep(1.5)
    after = await t.settle(0.6)
    assert after is not None
    sent = t.observer.status_counter("sensor-1", "sent") - sent_before
    accepted = after.counters.get("accepted", 0) - before.counters.get("accepted", 0)

    def delta(reason: str) -> int:
        return after.rejected.get(reason, 0) - before.rejected.get(reason, 0)

    t.expect(
        "none_accepted",
        measured={"accepted": accepted, "genuine_sent": sent},
        held=0 < accepted <= sent + 5,  # +5: what was in flight when we read the counters
        expected="accepted <= genuine samples sent",
    )
    forged_shown = [i for i in t.observer.indications_after(t0) if i.vm == FORGED_VM]
    t.expect("none_indicated", measured=len(forged_shown), held=not forged_shown, expected="0")
    counted = {r: delta(r) for r in ("authentication", "duplicate", "malformed", "schema")}
    t.expect(
        "counted_by_reason",
        measured=counted,
        held=counted["authentication"] >= 3 * N
        and counted["duplicate"] >= N
        and counted["malformed"] >= N // 2
        and counted["schema"] >= N // 2,
        expected=f"authentication >= {3 * N}, duplicate >= {N}, malformed >= {N // 2}, "
        f"schema >= {N // 2}",
    )
    t.expect(
        "still_operational",
        measured={"state": after.state, "reasons": after.reasons},
        held=after.state != "INHIBITED" and accepted > 0,
        expected="measuring (accepted > 0), not INHIBITED",
    )
