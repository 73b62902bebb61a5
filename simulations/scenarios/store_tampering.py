"""A_DATA_DEL / A_DATA_GEN on the remote store (4.2): records deleted or inserted at rest."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

from security_module.merkle import leaf_hash
from security_module.signing import canonical_json
from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial
from wire.messages import MeasurementRecord

STORE = TestbedSpec(
    rate_hz=20.0, supervised=("processing", "mother-unit", "sensor-1"), managed=("storage",)
)
EXPECTATIONS = {
    "verifier_fails": "testbed verify-store (independent of the mother unit) exits 1",
    "record_named": "the verifier names the affected sequence number",
    "baseline_clean": "before the edit the same verifier found the store complete",
}


async def _verify(t: Trial, db: Path) -> tuple[int, str]:
    """``testbed verify-store --json`` as its own process: exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "testbed",
        "verify-store",
        "--dir",
        str(t.dir),
        "--db",
        str(db),
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode("utf-8", "replace")


async def _quiet_store(t: Trial) -> Path:
    """Let records accumulate, then stop the store (the attacker edits it at rest)."""
    await t.observer.wait_for(lambda: t.observer.counter("records_acked") >= 40, timeout_s=6.0)
    await t.live.stop("storage")
    return t.dir / "storage" / "records.sqlite"


def _named(output: str, seq: int) -> bool:
    """The verifier's JSON lists ``seq`` among the bad records (L6: named, not just "bad")."""
    try:
        report, _ = json.JSONDecoder().raw_decode(output.lstrip())  # a summary line may follow
    except ValueError:
        return False
    bad = report.get("bad_records", []) if isinstance(report, dict) else []
    return any(isinstance(b, dict) and b.get("seq") == seq for b in bad)


async def _judge(t: Trial, db: Path, seq: int, baseline: tuple[int, str]) -> None:
    code, output = await _verify(t, db)
    if code == 1:
        t.detected(time.monotonic(), f"verify-store exit 1 (seq {seq})")
    t.expect(
        "verifier_fails",
        measured={"exit": code, "output": output[-400:]},
        held=code == 1,
        expected="exit 1",
    )
    t.expect(
        "record_named",
        measured=seq,
        held=code == 1 and _named(output, seq),
        expected=f"seq {seq} named",
    )
    t.expect(
        "baseline_clean", measured={"exit": baseline[0]}, held=baseline[0] == 0, expected="exit 0"
    )


@scenario(
    id="store-record-deleted",
    title="A stored record deleted from the remote store",
    vectors=["A_DATA_DEL"],
    requirements=["L1", "L3", "L6"],
    architectures=["4.2"],
    testbed=STORE,
    expectations=EXPECTATIONS,
    depends_on="issue 5: records Merkle log and testbed verify-store",
    budget_s=30.0,
)
async def deleted(t: Trial) -> None:
    """Timeline.

    t0      the instrument stores ~40 records remotely. The attacker, on the storage
            host, stops the store and deletes record 17 with SQL (a customer's
            consumption disappears).
    +1 s    an independent verifier (testbed verify-store: public keys and the type
            approval only) rebuilds the log from the store: exit 1, record 17 named.
    """
    db = await _quiet_store(t)
    baseline = await _verify(t, db)
    seq = 17
    t.attack_started(f"record {seq} deleted")
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM records WHERE seq = ?", (seq,))
    await _judge(t, db, seq, baseline)


@scenario(
    id="store-record-inserted",
    title="A forged record inserted into the remote store",
    vectors=["A_DATA_GEN"],
    requirements=["L2", "L3", "L4", "L6"],
    architectures=["4.2"],
    testbed=STORE,
    expectations=EXPECTATIONS,
    depends_on="issue 5: records Merkle log and testbed verify-store",
    budget_s=30.0,
)
async def inserted(t: Trial) -> None:
    """Timeline.

    t0      the instrument stores ~40 records remotely. The attacker stops the store and
            appends a forged record after the last one: a copy of the last record with
            Vm raised by 100 m³, the next sequence number, and the hash chain field
            computed the public way - everything but a signature of the mother unit.
    +1 s    testbed verify-store: exit 1, the forged record named (not covered by any
            checkpoint the mother unit signed).
    """
    db = await _quiet_store(t)
    baseline = await _verify(t, db)
    with sqlite3.connect(db) as c:
        last_seq, leaf, created = c.execute(
            "SELECT seq, leaf, created_at FROM records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        last = MeasurementRecord.model_validate_json(bytes(leaf))
        forged = last.model_copy(
            update={
                "seq": last_seq + 1,
                "vm": last.vm + 100.0,
                "prev_leaf_hash": leaf_hash(bytes(leaf)).hex(),
            }
        )
        t.attack_started(f"record {last_seq + 1} inserted")
        c.execute(
            "INSERT INTO records (seq, leaf, created_at) VALUES (?, ?, ?)",
            (last_seq + 1, canonical_json(forged), created),
        )
    await _judge(t, db, last_seq + 1, baseline)
