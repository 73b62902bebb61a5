"""The SQLite record store: durable, idempotent, gap-refusing, conflict-detecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from remote_storage.store import SequenceConflict, SqliteStore, StoredRecord


def rec(seq: int, body: bytes = b"x") -> StoredRecord:
    return StoredRecord(seq=seq, leaf=body + str(seq).encode(), created_at=float(seq))


def test_append_and_reopen(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.sqlite")
    assert store.append([rec(0), rec(1)], "cp2") == 1
    store.close()
    again = SqliteStore(tmp_path / "r.sqlite")
    assert again.size() == 2
    assert [r.seq for r in again.read(0, 10)] == [0, 1]
    assert again.latest_checkpoint() == "cp2"


def test_retransmission_is_idempotent(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.sqlite")
    store.append([rec(0), rec(1)], "")
    assert store.append([rec(1), rec(2)], "") == 2
    assert store.size() == 3


def test_gap_keeps_only_contiguous_prefix(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.sqlite")
    assert store.append([rec(0), rec(2)], "cp3") == 0
    assert store.size() == 1
    assert store.latest_checkpoint() is None  # the checkpoint spoke for records not stored


def test_different_bytes_for_a_stored_seq_is_a_conflict(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.sqlite")
    store.append([rec(0)], "")
    with pytest.raises(SequenceConflict) as info:
        store.append([rec(0, b"forged")], "")
    assert info.value.seq == 0
    assert store.read(0, 0)[0].leaf == b"x0"


def test_wal_and_full_sync_are_on(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.sqlite")
    db = store._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
