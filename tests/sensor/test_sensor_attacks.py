"""T2/T3/T4/T6 on the sensor link: nothing forged, altered or replayed is ever accepted."""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from security_module.envelope import SealedEnvelope, Sealer
from testbed.rig import Rig
from wire.codec import decode, encode
from wire.messages import SAMPLE_MSG_TYPE, Sample

pytestmark = [pytest.mark.timeout(120)]

INJECTED = 10_000


def _bit_flip(payload: bytes, rng: random.Random) -> bytes:
    data = bytearray(payload)
    i = rng.randrange(len(data))
    data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def _forged(rng: random.Random, topic: str, seq: int) -> bytes:
    """A well-formed sample sealed under a key the attacker made up."""
    sealer = Sealer(os.urandom(32), "sensor-1", "mother-unit", boot=rng.randrange(1, 100))
    sealer.seq = seq
    sample = Sample(
        sensor_id="sensor-1", boot=sealer.boot, seq=seq, created_at=0.0, vm=1.0, p=100.0, t=290.0
    )
    return encode(sealer.seal(SAMPLE_MSG_TYPE, topic, encode(sample)))


async def test_forged_bit_flipped_and_replayed_samples_are_all_rejected(rig: Rig) -> None:
    """Timeline: sensor-1 measures at 50 Hz while an ordinary MQTT client records its
    sealed samples; the sensor is stopped; the client then publishes 10,000 messages on
    sensor-1's data topic: replays of the captured samples, bit-flipped copies of them,
    and samples sealed under made-up keys. Invariant: the accepted count does not move,
    every injected message is counted as rejected, with a reason."""
    await rig.start_instrument("sensor-1", rate_hz=50)
    # Measuring, not still starting: a mother unit that came up before the store defers
    # samples until its first storage query is answered (asked again after 2 s), and a
    # sample deferred now would be owed by the sensor stopped below, never accepted.
    await rig.wait_state(lambda s: s.state == "OPERATIONAL" and s.counters.get("accepted", 0) > 0,
                         what="measuring")
    topic = rig.topics.sensor_data("sensor-1")
    captured: list[bytes] = []
    async with rig.client("capture") as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(20):
            async for m in client.messages:
                assert isinstance(m.payload, bytes)
                captured.append(m.payload)
                if len(captured) >= 100:
                    break
    rig.kill("sensor-1", signal.SIGTERM)  # its last status tells how many it sent
    statuses, _ = await rig.retained()
    sent = statuses["sensor-1"].counters["sent"]
    before = await rig.wait_state(
        lambda s: s.counters.get("records_acked", 0) == s.counters.get("accepted", 0) == sent,
        what="every genuine sample accepted and stored",
    )
    rng = random.Random(7)
    attack: list[bytes] = []
    for i in range(INJECTED):
        kind = i % 3
        if kind == 0:
            attack.append(rng.choice(captured))
        elif kind == 1:
            attack.append(_bit_flip(rng.choice(captured), rng))
        else:
            attack.append(_forged(rng, topic, rng.randrange(10_000)))
    async with rig.client("attacker") as client:
        sem = asyncio.Semaphore(200)

        async def send(payload: bytes) -> None:
            async with sem:
                await client.publish(topic, payload, qos=1)

        async with asyncio.TaskGroup() as tg:
            for payload in attack:
                tg.create_task(send(payload))
    after = await rig.wait_state(
        lambda s: s.counters.get("rejected", 0) - before.counters.get("rejected", 0) >= INJECTED,
        deadline_s=30,
        what="all injected messages rejected",
    )
    assert after.counters["accepted"] == before.counters["accepted"]
    assert after.counters["rejected"] - before.counters.get("rejected", 0) == INJECTED
    reasons = {k: after.rejected.get(k, 0) - before.rejected.get(k, 0) for k in after.rejected}
    assert sum(reasons.values()) == INJECTED
    assert reasons.get("duplicate", 0) >= INJECTED // 3, str(sorted(reasons.items()))  # replays
    assert reasons.get("authentication", 0) >= INJECTED // 3  # the forgeries, most flips
    # The summaries in the logbook account for them (T6, rate-limited).
    await rig.wait_state(lambda s: True)
    decoded = [decode(SealedEnvelope, c, topic) for c in captured]
    assert all(e.sender == "sensor-1" for e in decoded)
