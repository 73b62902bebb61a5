"""L6: every edit of the SQLite file made with the sqlite3 shell while nothing runs is
found by ``testbed verify-store`` (exit 1, the affected sequence numbers named).

The store is written exactly as the mother unit writes it (leaves = canonical JSON
with the hash chain, a signed checkpoint after every batch of 5), signed with the
provisioned mother unit key; the verifier then gets only DIR's public material.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from security_module.provisioning import Provisioned, provision
from testbed.verify_store import synthetic_store

N = 40
SQLITE3 = shutil.which("sqlite3")
pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("prov")
    provision(d)
    return d


@pytest.fixture
def store(provisioned: Path, tmp_path: Path) -> Path:
    material = Provisioned(provisioned)
    approval = material.type_approval
    sids = {k: v[0] for k, v in approval.software_ids.items() if k in
            ("remote_processing", "mother_unit")}
    db = tmp_path / "records.sqlite"
    synthetic_store(db, N, 5, signer=material.logbook_signer(),
                    instrument=material.instrument_id, software_ids=sids)
    return db


def sql(db: Path, statement: str) -> None:
    # Never a skip: the tamper table is evidence (.ci/run installs the shell).
    assert SQLITE3 is not None, "needs the sqlite3 shell (apt-get install sqlite3)"
    subprocess.run([SQLITE3, str(db), statement], check=True, timeout=10)


def verify(dir: Path, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testbed", "verify-store", "--dir", str(dir), "--db", str(db),
         *extra],
        capture_output=True, text=True, timeout=30, check=False,
    )


def bad_seqs(out: str) -> dict[int, str]:
    return {b["seq"]: b["reason"] for b in json.loads(out)["bad_records"]}


def test_untouched_store_verifies(provisioned: Path, store: Path) -> None:
    run = verify(provisioned, store)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK" in run.stdout
    assert f"0..{N - 1}" in run.stdout


# (id, sqlite3 statement, seqs that must be named, words the reason must contain)
TAMPERING = [
    ("delete-one", "DELETE FROM records WHERE seq = 17", {17}, "deleted"),
    ("change-one-digit",
     "UPDATE records SET leaf = CAST(replace(CAST(leaf AS TEXT), '\"p\":101.325', "
     "'\"p\":101.326') AS BLOB) WHERE seq = 23", {23}, "altered"),
    ("change-last-record",
     "UPDATE records SET leaf = CAST(replace(CAST(leaf AS TEXT), '\"t\":288.15', "
     "'\"t\":288.16') AS BLOB) WHERE seq = 39", {39}, "altered"),
    ("insert-forged",
     "INSERT INTO records (seq, leaf, created_at) SELECT 40, CAST(replace(replace("
     "CAST(leaf AS TEXT), '\"seq\":39', '\"seq\":40'), '\"sample_seq\":39', "
     "'\"sample_seq\":40') AS BLOB), created_at + 0.01 FROM records WHERE seq = 39",
     {40}, "not covered"),
    ("swap-two",
     "UPDATE records SET seq = -1 WHERE seq = 5; UPDATE records SET seq = 5 WHERE seq = 30; "
     "UPDATE records SET seq = 30 WHERE seq = -1",
     {5, 30}, "swapped"),
    ("truncate-tail", "DELETE FROM records WHERE seq >= 33", set(range(33, 40)), "truncated"),
    ("older-checkpoint",
     "UPDATE checkpoints SET body = (SELECT body FROM checkpoints WHERE tree_size = 30) "
     "WHERE tree_size = 40", set(range(35, 40)), "not covered"),
]


@pytest.mark.parametrize(("statement", "seqs", "word"), [t[1:] for t in TAMPERING],
                         ids=[t[0] for t in TAMPERING])
def test_tampering_is_found_and_named(
    provisioned: Path, store: Path, statement: str, seqs: set[int], word: str
) -> None:
    sql(store, statement)
    run = verify(provisioned, store, "--json")
    assert run.returncode == 1, run.stdout + run.stderr
    named = bad_seqs(run.stdout)
    assert seqs <= set(named), named
    assert all(word in named[s] for s in seqs), named
    # Nothing before the edit is blamed (the edit is localized).
    assert min(named) >= min(seqs), named
    human = verify(provisioned, store)
    assert human.returncode == 1
    assert "CORRUPTED" in human.stdout
    assert str(min(seqs)) in human.stderr


def test_corrupted_store_is_not_exported(provisioned: Path, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    good = verify(provisioned, store, "--export", str(out))
    assert good.returncode == 0, good.stderr
    assert len(out.read_text().splitlines()) == N + 1
    out.unlink()
    sql(store, "DELETE FROM records WHERE seq = 3")
    bad = verify(provisioned, store, "--export", str(out))
    assert bad.returncode == 1
    assert "refusing to export" in bad.stderr
    assert not out.exists()


def test_records_shows_status_per_record(provisioned: Path, store: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "testbed", "records", "--dir", str(provisioned), "--db",
         str(store), "--from", "10", "--to", "12", "--json"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    rows = json.loads(ok.stdout)["records"]
    assert [r["seq"] for r in rows] == [10, 11, 12]
    assert all(r["status"] == "verified" for r in rows)
    assert rows[0]["sensor_id"] == "sensor-1"
    assert rows[0]["sample_seq"] == 10
    assert "remote_processing" in rows[0]["software_ids"]
    sql(store, "UPDATE records SET leaf = CAST(replace(CAST(leaf AS TEXT), '\"p\":101.325', "
               "'\"p\":111.325') AS BLOB) WHERE seq = 11")
    bad = subprocess.run(
        [sys.executable, "-m", "testbed", "records", "--dir", str(provisioned), "--db",
         str(store), "--from", "8", "--to", "12", "--json"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert bad.returncode == 1
    status = {r["seq"]: r["status"] for r in json.loads(bad.stdout)["records"]}
    assert status[9] == "verified"  # proven by the signed checkpoint of size 10
    assert status[11].startswith("CORRUPTED")
    assert status[10].startswith("not verified")  # its only checkpoint (15) is broken
