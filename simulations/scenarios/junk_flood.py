"""A_WEB_DOS: a flood of junk on the sensor and command topics while measurements go on."""

from __future__ import annotations

import asyncio
import time
import uuid

from simulations.forge import forged_sample, junk
from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial
from wire.codec import encode
from wire.messages import Command, InstrumentState

FLOOD_S = 3.0
RATE_HZ = 10.0
CATCH_UP_S = 8.0  # beyond the first 2 s


@scenario(
    id="junk-flood",
    title="Flood of junk on the sensor and command topics during measurement",
    vectors=["A_WEB_DOS"],
    requirements=["T1", "T6", "T8", "MID-7.2"],
    architectures=["4.1"],
    testbed=TestbedSpec(rate_hz=RATE_HZ),
    expectations={
        "no_sample_lost": "every sample the genuine sensor sent during the flood is accepted; "
        "no unrecoverable gap",
        "flood_rejected": "the junk is rejected and counted, none accepted",
        "logbook_bounded": "the logbook grows by a bounded number of summary entries, "
        "not one per junk message",
        "not_inhibited": "the instrument is never INHIBITED by the flood",
    },
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      two attacker clients (one with a sensor's broker password, one with the
            officer's) publish as fast as they can for 3 s: non-JSON junk and samples
            sealed under made-up keys on sensor-1's data topic; junk and well-formed
            commands with made-up names on the command topic. sensor-1 keeps measuring
            at 10 Hz.
    +3 s    flood ends; within 2 s (at most 10 s on a loaded machine) every genuine sample
            sent meanwhile is accepted, no gap
            was given up, the junk is counted, the logbook holds a few summaries, and the
            instrument was never INHIBITED.
    """
    before = t.observer.state
    assert before is not None
    data = t.topics.sensor_data("sensor-1")
    sent_before = t.observer.status_counter("sensor-1", "sent")
    logbook_before = len(t.logbook())
    t0 = t.attack_started("flood")
    stop_at = time.monotonic() + FLOOD_S
    counts = {"sensor": 0, "command": 0}

    async def flood_sensor() -> None:
        async with t.attacker("flood-sensor", credentials="sensor-1") as a:
            n = 0
            while time.monotonic() < stop_at:
                payload = junk(n) if n % 2 else forged_sample(data, "sensor-1", 5_000_000 + n)
                await a.publish(data, payload)
                n += 1
            counts["sensor"] = n

    async def flood_commands() -> None:
        async with t.attacker("flood-command", credentials="officer") as a:
            n = 0
            while time.monotonic() < stop_at:
                if n % 2:
                    payload = junk(n)
                else:
                    payload = encode(
                        Command(command_id=uuid.uuid4().hex, name=f"junk-{n}", issuer="flood")
                    )
                await a.publish(t.topics.command, payload)
                n += 1
            counts["command"] = n

    async with asyncio.TaskGroup() as tg:
        tg.create_task(flood_sensor(), name="flood-sensor")
        tg.create_task(flood_commands(), name="flood-command")
    t.mark("flood_ended", **counts)
    # The sensor retransmits what the mother unit asks for; give it time to catch up (on
    # a loaded machine that can take longer than the usual 2 s: wait for it, bounded).
    def caught_up(s: InstrumentState) -> bool:
        sent_now = t.observer.status_counter("sensor-1", "sent") - sent_before
        return s.counters.get("accepted", 0) - before.counters.get("accepted", 0) >= sent_now - 3

    await asyncio.sleep(2.0)
    await t.wait_state(caught_up, CATCH_UP_S)
    after = await t.settle(0.6)
    assert after is not None
    sent = t.observer.status_counter("sensor-1", "sent") - sent_before
    accepted = after.counters.get("accepted", 0) - before.counters.get("accepted", 0)
    lost = after.counters.get("gaps_unrecoverable", 0) - before.counters.get(
        "gaps_unrecoverable", 0
    )
    t.expect(
        "no_sample_lost",
        measured={"genuine_sent": sent, "accepted": accepted, "gaps_unrecoverable": lost},
        held=lost == 0 and accepted >= sent - 3 and sent > 0,  # 3: in flight at the reading
        expected="accepted >= sent (-3 in flight), 0 gaps given up",
    )
    rejected = sum(after.rejected.values()) - sum(before.rejected.values())
    flood = counts["sensor"] + counts["command"]
    t.expect(
        "flood_rejected",
        measured={"flood_messages": flood, "rejected": rejected},
        held=flood > 0 and rejected >= 0.95 * flood,
        expected=">= 95 % of the flood counted as rejected (QoS 1: all delivered)",
    )
    added = len(t.logbook()) - logbook_before
    t.expect(
        "logbook_bounded",
        measured={
            "entries_added": added,
            "flood_messages": flood,
            "entries_per_s": round(added / FLOOD_S, 1),
        },
        held=added <= 0.05 * flood,
        expected="<= 5 % of the flood messages (summaries, never one per message)",
    )
    inhibited = t.observer.first_state_after(t0, lambda s: s.state == "INHIBITED")
    t.expect(
        "not_inhibited",
        measured=None if inhibited is None else inhibited.message.reasons,
        held=inhibited is None,
        expected="never INHIBITED",
    )
