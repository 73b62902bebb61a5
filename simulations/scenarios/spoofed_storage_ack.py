"""A_Spoofing (4.2): acknowledgements forged as the store, for records it never stored."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import uuid

from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial
from wire.codec import encode
from wire.messages import StorageAck


def _stored(t: Trial) -> int:
    with sqlite3.connect(t.dir / "storage" / "records.sqlite") as c:
        (n,) = c.execute("SELECT COUNT(*) FROM records").fetchone()
    return int(n)


@scenario(
    id="spoofed-storage-ack",
    title="Storage acknowledgements forged for records the store does not hold",
    vectors=["A_Spoofing"],
    requirements=["T4", "L1", "L8"],
    architectures=["4.2"],
    testbed=TestbedSpec(
        rate_hz=10.0, supervised=("processing", "mother-unit", "sensor-1"), managed=("storage",)
    ),
    expectations={
        "forged_ack_refused": "the mother unit counts no record as stored that the store "
        "does not hold",
        "rejected_counted": "the forged acknowledgements are rejected and counted",
    },
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the store hangs (SIGSTOP: a stuck disk, or the attacker's doing); the mother
            unit keeps making records and holds them until acknowledged (L1, L8).
    +1.5 s  the attacker, with the storage host's broker password, publishes
            acknowledgements "stored up to" the newest record for batches the store
            never committed.
    +2.5 s  the mother unit must not have counted those records as stored (it would
            acknowledge the sensor, which then forgets the samples: loss if the store
            never commits them).
    """
    await t.live.stop_signal("storage", signal.SIGSTOP)
    held_at = _stored(t)
    before = t.observer.state
    assert before is not None
    t.attack_started("store hangs; acknowledgements forged")
    await asyncio.sleep(1.5)
    state = t.observer.state
    created = state.counters.get("records_created", 0) if state else 0
    async with t.attacker("fake-store", credentials="storage") as a:
        for _ in range(3):
            ack = StorageAck(
                batch_id=f"r0-{uuid.uuid4().hex[:6]}",
                stored_upto=created - 1,
                tree_size=created,
            )
            await a.publish(t.topics.storage_ack, encode(ack))
    after = await t.settle(1.0)
    assert after is not None
    acked = after.counters.get("records_acked", 0)
    really = _stored(t)
    t.expect(
        "forged_ack_refused",
        measured={
            "records_acked_by_mother_unit": acked,
            "records_in_store": really,
            "in_store_when_it_hung": held_at,
        },
        held=acked <= really,
        expected="records_acked <= records in the store",
    )
    delta = sum(after.rejected.values()) - sum(before.rejected.values())
    t.expect("rejected_counted", measured=delta, held=delta >= 3, expected=">= 3")
    if acked <= really and delta >= 3:
        seen = t.observer.first_state_after(
            t.attack_at or 0.0, lambda s: sum(s.rejected.values()) > sum(before.rejected.values())
        )
        if seen is not None:
            t.detected(seen.at, "forged acknowledgements rejected")
