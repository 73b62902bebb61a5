"""T1/T8 under crashes: every sample is accepted exactly once or reported as a gap.

The invariant, checked at the end of each story from the outside:

* every (boot, seq) the sensor ever published is either stored exactly once in
  the remote store, or named by a ``gap_unrecoverable`` logbook entry;
* no (boot, seq) is stored twice;
* no nonce repeats: each (boot, seq) always carries the same ciphertext.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable

import pytest

from security_module.envelope import SealedEnvelope
from testbed.rig import Rig
from wire.codec import decode

pytestmark = [pytest.mark.timeout(150)]


class Capture:
    """An ordinary subscriber that records every sealed sample published by sensor-1."""

    def __init__(self) -> None:
        self.ciphertexts: dict[tuple[int, int], set[bytes]] = defaultdict(set)

    async def run(self, rig: Rig) -> None:
        topic = rig.topics.sensor_data("sensor-1")
        while True:  # survives a broker restart
            try:
                async with rig.client("capture") as client:
                    await client.subscribe(topic, qos=1)
                    async for m in client.messages:
                        assert isinstance(m.payload, bytes)
                        env = decode(SealedEnvelope, m.payload, topic)
                        self.ciphertexts[(env.boot, env.seq)].add(env.ciphertext)
            except Exception:
                await asyncio.sleep(0.2)


def stored_samples(rig: Rig) -> Counter[tuple[int, int]]:
    db = sqlite3.connect(rig.dir / "storage" / "records.sqlite")
    try:
        rows = db.execute("SELECT leaf FROM records ORDER BY seq").fetchall()
    finally:
        db.close()
    out: Counter[tuple[int, int]] = Counter()
    for (leaf,) in rows:
        r = json.loads(bytes(leaf))
        out[(r["sample_boot"], r["sample_seq"])] += 1
    return out


def reported_gaps(rig: Rig) -> set[tuple[int, int]]:
    gaps: set[tuple[int, int]] = set()
    for e in rig.logbook():
        if e.type == "gap_unrecoverable":
            gaps.update((e.data["boot"], s) for s in range(e.data["first"], e.data["last"] + 1))
    return gaps


async def run_story(rig: Rig, disturb: Callable[[], Awaitable[None]]) -> None:
    capture = Capture()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(capture.run(rig))
        await rig.start_instrument("sensor-1", rate_hz=50)
        await rig.wait_state(lambda s: s.counters.get("records_acked", 0) >= 50, what="measuring")
        await disturb()
        await rig.wait_state(
            lambda s: s.counters.get("records_acked", 0) >= 50 and s.state != "INHIBITED",
            deadline_s=30,
            what="measuring again",
        )
        await asyncio.sleep(2.0)  # keep measuring for a while after the disturbance
        rig.kill("sensor-1", signal.SIGTERM)  # a clean stop: nothing more is produced
        # Everything published so far is now either stored or still owed.
        await asyncio.sleep(1.0)
        stored = stored_samples(rig)
        produced = set(capture.ciphertexts)
        missing = produced - set(stored) - reported_gaps(rig)
        deadline = asyncio.get_running_loop().time() + 20
        while missing and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            stored = stored_samples(rig)
            missing = produced - set(stored) - reported_gaps(rig)
        task.cancel()
    assert [k for k, n in stored.items() if n > 1] == [], "a sample was stored twice"
    # The sensor was stopped cleanly: what it still owed is in its outbox journal;
    # the mother unit asks for it when the sensor returns. Owed is not lost.
    owed = _outbox_pending(rig)
    assert missing - owed == set(), f"lost without a trace: {sorted(missing - owed)[:20]}"
    reused = {k: v for k, v in capture.ciphertexts.items() if len(v) > 1}
    assert reused == {}, "a nonce was used for two different messages"


def _outbox_pending(rig: Rig) -> set[tuple[int, int]]:
    from remote_sensor.outbox import Outbox  # noqa: PLC0415 - reading the sensor's journal

    box = Outbox(10**6, journal=rig.dir / "sensor-1" / "outbox.journal")
    try:
        return {k for k, _ in box.items()}
    finally:
        box.close()


async def test_sensor_killed_and_restarted(rig: Rig) -> None:
    async def disturb() -> None:
        rig.kill("sensor-1")  # SIGKILL: no goodbye, the Last Will speaks
        await rig.wait_state(lambda s: s.state == "DEGRADED", what="sensor loss detected")
        rig.start("sensor-1", "--rate-hz", "50")

    await run_story(rig, disturb)


async def test_broker_restarted(rig: Rig) -> None:
    async def disturb() -> None:
        rig.restart_broker()

    await run_story(rig, disturb)


async def test_mother_unit_killed_and_restarted(rig: Rig) -> None:
    async def disturb() -> None:
        rig.kill("mother-unit")  # SIGKILL: its buffers are gone; the sensor still has the samples
        rig.start("mother-unit")
        await rig.wait_online(["mother-unit"])

    await run_story(rig, disturb)
