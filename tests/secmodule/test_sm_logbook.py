"""The logbook: append-only Merkle log, event counter, torn lines, checkpoints, CLI."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from security_module.checkpoint import NoteSigner, open_checkpoint
from security_module.errors import LogbookCorrupt
from security_module.logbook import EntryType, Logbook
from security_module.logbook_verify import verify_logbook
from security_module.merkle import verify_consistency, verify_inclusion
from security_module.provisioning import Provisioned, provision
from testbed.commands import logbook as logbook_cmd

SIGNER = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())


def _fill(lb: Logbook, n: int) -> None:
    for i in range(n):
        kind = EntryType.PAIRING if i % 4 == 1 else EntryType.STARTUP
        lb.append(kind, {"i": i, "sensor_id": "sensor-1", "vb": 1.25 * i})


def test_append_reopen_keeps_tree_and_counter(tmp_path: Path) -> None:
    lb = Logbook(tmp_path)
    _fill(lb, 20)
    root, counter = lb.root(), lb.event_counter
    assert counter == 5
    again = Logbook(tmp_path)
    assert again.root() == root
    assert again.size == 20
    assert again.event_counter == counter
    assert [e.model_dump() for e in again.entries] == [e.model_dump() for e in lb.entries]
    proof = again.inclusion_proof(7)
    verify_inclusion(proof, again.leaf_hash(7), root, tree_size=20)
    again.append(EntryType.SHUTDOWN)
    verify_consistency(again.consistency_proof(20), root, again.root(),
                       first_size=20, second_size=21)


@pytest.mark.parametrize("torn", [
    pytest.param(b'{"data":{},"event_counter":0,"ind', id="partial-no-newline"),
    pytest.param(b'{"data":{},"event_co\x00\x00\x00\n', id="garbage-with-newline"),
])
def test_torn_last_line_is_kept_and_recorded(tmp_path: Path, torn: bytes) -> None:
    lb = Logbook(tmp_path)
    _fill(lb, 5)
    root5 = lb.root()
    with (tmp_path / "logbook.jsonl").open("ab") as f:  # the crash
        f.write(torn)
    recovered = Logbook(tmp_path)  # never crashes
    assert recovered.size == 6
    assert recovered.root(5) == root5
    last = recovered.entry(5)
    assert last.type == EntryType.RECOVERED_TORN_ENTRY
    assert last.data["length"] == len(torn)
    kept = json.loads((tmp_path / "logbook.jsonl.torn").read_text().splitlines()[0])
    assert base64.b64decode(kept["bytes_b64"]) == torn  # never silently dropped
    assert verify_logbook(tmp_path, SIGNER.verifier).ok
    Logbook(tmp_path).append(EntryType.STARTUP)  # and life goes on


@settings(max_examples=25, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=1, max_size=30))
def test_event_counter_never_goes_down(tmp_path_factory: pytest.TempPathFactory,
                                       flags: list[bool]) -> None:
    lb = Logbook(tmp_path_factory.mktemp("ec"))
    seen = [lb.event_counter]
    for relevant in flags:
        lb.append("intervention" if relevant else "note", legally_relevant=relevant)
        seen.append(lb.event_counter)
    assert seen == sorted(seen)
    assert seen[-1] == sum(flags)
    assert Logbook(lb.path).event_counter == sum(flags)  # derived from the entries


def test_lowering_the_event_counter_in_the_file_is_detected(tmp_path: Path) -> None:
    lb = Logbook(tmp_path)
    _fill(lb, 8)
    lines = lb.path.read_bytes().split(b"\n")
    entry = json.loads(lines[7])
    entry["event_counter"] = 0
    lines[7] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    lb.path.write_bytes(b"\n".join(lines))
    with pytest.raises(LogbookCorrupt) as exc:
        Logbook(tmp_path)
    assert exc.value.first_bad_index == 7


def test_checkpoints_and_consistency_with_every_earlier(tmp_path: Path) -> None:
    lb = Logbook(tmp_path, origin="welmec-testbed/gm-0001/logbook")
    notes = []
    for _ in range(4):
        _fill(lb, 7)
        notes.append(lb.checkpoint(SIGNER).note)
    assert lb.checkpoint_notes() == notes
    assert (tmp_path / "checkpoint.txt").read_text() == notes[-1]
    cps = [open_checkpoint(n, SIGNER.verifier) for n in notes]
    assert [c.size for c in cps] == [7, 14, 21, 28]
    assert cps[-1].timestamp is not None
    for c in cps[:-1]:
        verify_consistency(lb.consistency_proof(c.size, 28), c.root_hash, cps[-1].root_hash,
                           first_size=c.size, second_size=28)
    result = verify_logbook(tmp_path, SIGNER.verifier, origin="welmec-testbed/gm-0001/logbook")
    assert result.ok
    assert result.checkpoints == 4
    assert result.newest_checkpoint_size == 28


def test_rewritten_history_is_found(tmp_path: Path) -> None:
    """An attacker rewrites the whole file consistently (new hash chain), but cannot
    re-sign the checkpoints."""
    lb = Logbook(tmp_path)
    _fill(lb, 10)
    lb.checkpoint(SIGNER)
    lb.path.unlink()
    forged = Logbook(tmp_path)
    _fill(forged, 9)
    forged.append(EntryType.STARTUP, {"i": 9, "note": "nothing happened"})
    result = verify_logbook(tmp_path, SIGNER.verifier)
    assert not result.ok
    assert result.first_bad_index is not None


def test_truncation_is_found(tmp_path: Path) -> None:
    lb = Logbook(tmp_path)
    _fill(lb, 10)
    lb.checkpoint(SIGNER)
    lines = lb.path.read_bytes().split(b"\n")
    lb.path.write_bytes(b"\n".join(lines[:8]) + b"\n")
    result = verify_logbook(tmp_path, SIGNER.verifier)
    assert not result.ok
    assert result.first_bad_index == 8


def test_forged_checkpoint_is_found(tmp_path: Path) -> None:
    lb = Logbook(tmp_path)
    _fill(lb, 3)
    lb.checkpoint(SIGNER)
    mallory = NoteSigner(SIGNER.name, Ed25519PrivateKey.generate())
    lb.checkpoint(mallory)  # appended to checkpoints.jsonl like a real one
    result = verify_logbook(tmp_path, SIGNER.verifier)
    assert not result.ok
    assert any("not signed by the expected key" in p for p in result.problems)


# --- the command line, against a provisioned directory --------------------------------
def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    logbook_cmd.register(app)
    return app


@pytest.fixture
def provisioned_logbook(tmp_path: Path) -> Path:
    d = tmp_path / "p"
    provision(d)
    prov = Provisioned(d)
    lb = prov.logbook()
    signer = prov.logbook_signer()
    t = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    for i in range(12):
        lb.append(EntryType.PAIRING if i == 3 else EntryType.STARTUP, {"i": i},
                  time=t + dt.timedelta(seconds=i))
        if i in (4, 11):
            lb.checkpoint(signer)
    return d


def test_cli_verify_ok_and_show(provisioned_logbook: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(_cli(), ["logbook", "verify", "--dir", str(provisioned_logbook)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    shown = runner.invoke(_cli(), ["logbook", "show", "--dir", str(provisioned_logbook),
                                   "--json"])
    assert shown.exit_code == 0
    data = json.loads(shown.output)
    assert [e["index"] for e in data["entries"]] == list(range(12))
    assert data["event_counter"] == 1
    table = runner.invoke(_cli(), ["logbook", "show", "--dir", str(provisioned_logbook)])
    assert table.exit_code == 0
    assert "pairing" in table.output


@pytest.mark.parametrize("index", [0, 5, 10])
def test_cli_verify_names_the_first_bad_entry(provisioned_logbook: Path, index: int) -> None:
    path = provisioned_logbook / "mother-unit" / "logbook.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[index] = lines[index].replace(b'"i":%d' % index, b'"i":%d' % (index + 100))
    path.write_bytes(b"\n".join(lines))
    runner = CliRunner()
    res = runner.invoke(_cli(), ["logbook", "verify", "--dir", str(provisioned_logbook)])
    assert res.exit_code == 1
    assert f"first bad entry: {index}" in res.output
    js = runner.invoke(_cli(), ["logbook", "verify", "--dir", str(provisioned_logbook),
                                "--json"])
    assert js.exit_code == 1
    assert json.loads(js.output)["first_bad_index"] == index


def test_cli_verify_last_entry_edit(provisioned_logbook: Path) -> None:
    """The last entry has no successor in the hash chain: the signed checkpoint finds it."""
    path = provisioned_logbook / "mother-unit" / "logbook.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[11] = lines[11].replace(b'"i":11', b'"i":99')
    path.write_bytes(b"\n".join(lines))
    res = CliRunner().invoke(_cli(), ["logbook", "verify", "--dir", str(provisioned_logbook),
                                      "--json"])
    assert res.exit_code == 1
    assert json.loads(res.output)["first_bad_index"] == 11
