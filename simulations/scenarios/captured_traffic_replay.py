"""Replay of captured traffic: sensor samples, control messages, a pairing authorization."""

from __future__ import annotations

import asyncio
import time

from simulations.registry import scenario
from simulations.trial import Trial
from wire.codec import RejectedPayload, decode
from wire.messages import Command, CommandReply


@scenario(
    id="captured-traffic-replay",
    title="Captured samples, control messages and a pairing authorization replayed",
    vectors=["A_Tampering_and_Injection", "A_SW_RUNTIME_INTERFACE"],
    requirements=["T3", "P8/U8"],
    architectures=["4.1"],
    expectations={
        "samples_refused": "replayed samples are refused as duplicates, none accepted twice",
        "control_refused": "replayed control messages are refused by the sensor (replay window)",
        "authorization_refused": "a replayed pairing authorization is refused: single use",
        "nothing_relevant_changed": "no pairing, no key change, event counter as after the "
        "genuine re-verification",
    },
    budget_s=30.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker, holding the broker passwords of the mother unit, sensor-1 and
            the officer (it reads and writes what they may), records the officer's
            authorize_pairing command of a genuine re-verification of sensor-1, then 5
            sealed samples and 3 sealed control messages to sensor-1.
    +3 s    it replays everything: samples on the data topic, control messages on the
            control topic, the command on the command topic.
    +5 s    samples counted as duplicates, control messages refused by the sensor,
            the authorization refused as already used; pairings and event counter as
            after the genuine re-verification.
    """
    data = t.topics.sensor_data("sensor-1")
    control = t.topics.sensor_control("sensor-1")
    # One client per recording: concurrent readers of one client would split its messages.
    async with (
        t.attacker("tap-command", credentials="mother-unit") as tap,
        asyncio.TaskGroup() as tg,
    ):
        recording = tg.create_task(
            tap.capture(t.topics.command, 1, timeout_s=8.0, keep=_is_authorization),
            name="record-command",
        )
        await asyncio.sleep(0.3)
        repaired = await t.live.pair("sensor-1", reason="periodic re-verification")
    commands = recording.result()
    async with (
        t.attacker("tap-data", credentials="mother-unit") as tap_data,
        t.attacker("tap-sensor", credentials="sensor-1") as tap_sensor,
    ):
        samples, controls = await asyncio.gather(
            tap_data.capture(data, 5, timeout_s=4.0), tap_sensor.capture(control, 3, timeout_s=6.0)
        )
    t.mark(
        "captured",
        samples=len(samples),
        commands=len(commands),
        controls=len(controls),
        repaired=repaired.ok,
    )
    await asyncio.sleep(1.0)
    before = await t.settle(0.6)
    assert before is not None
    sensor_rejected = t.observer.status_counter("sensor-1", "rejected")
    t.attack_started("replay")
    replies: list[CommandReply] = []
    # Each replay with the credentials that may publish there (the broker's ACL, issue 10).
    async with (
        t.attacker("replay-as-sensor", credentials="sensor-1") as as_sensor,
        t.attacker("replay-as-mother", credentials="mother-unit") as as_mother,
        t.attacker("officer-replay", credentials="officer") as officer,
    ):
        await officer.client.subscribe(t.topics.command_reply, qos=1)
        for topic, payload in samples:
            await as_sensor.publish(topic, payload)
        for topic, payload in controls:
            await as_mother.publish(topic, payload)
        for topic, payload in commands:
            await officer.publish(topic, payload)
        wanted = {decode(Command, p, topic).command_id for topic, p in commands}
        try:
            async with asyncio.timeout(3.0):
                async for m in officer.client.messages:
                    try:
                        payload = m.payload if isinstance(m.payload, bytes) else b""
                        reply = decode(CommandReply, payload, m.topic.value)
                    except RejectedPayload:
                        continue
                    if reply.command_id in wanted:
                        replies.append(reply)
                        t.detected(time.monotonic(), f"replayed authorization: {reply.message}")
                        break
        except TimeoutError:
            pass
    await asyncio.sleep(1.0)
    after = await t.settle(0.6)
    assert after is not None
    rejected = {k: v - before.rejected.get(k, 0) for k, v in after.rejected.items()}
    dup = rejected.get("duplicate", 0)
    accepted = after.counters.get("accepted", 0) - before.counters.get("accepted", 0)
    t.expect(
        "samples_refused",
        measured={"captured": len(samples), "rejected": rejected},
        held=len(samples) > 0 and dup >= len(samples),
        expected=f">= {len(samples)}",
    )
    refused_by_sensor = t.observer.status_counter("sensor-1", "rejected") - sensor_rejected
    t.expect(
        "control_refused",
        measured={"captured": len(controls), "refused": refused_by_sensor},
        held=len(controls) > 0 and refused_by_sensor >= len(controls),
        expected=f">= {len(controls)}",
    )
    t.expect(
        "authorization_refused",
        measured=[{"ok": r.ok, "message": r.message} for r in replies]
        or f"{len(commands)} captured",
        held=bool(replies) and all(not r.ok for r in replies),
        expected="ok=false (already used)",
    )
    t.expect(
        "nothing_relevant_changed",
        measured={
            "event_counter": [before.event_counter, after.event_counter],
            "paired": after.paired_sensors,
            "accepted": accepted,
            "state": after.state,
            "reasons": after.reasons,
        },
        held=before.event_counter == after.event_counter
        and after.paired_sensors == ["sensor-1"]
        and after.state != "INHIBITED",
        expected="event counter unchanged, sensor-1 paired, not INHIBITED",
    )


def _is_authorization(_: str, payload: bytes) -> bool:
    return b"authorize_pairing" in payload
