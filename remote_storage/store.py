"""The record store behind a small interface, with SQLite as the default backend.

A record counts as stored only after a durable commit (ARCHITECTURE.md §5):
WAL journal with ``synchronous=FULL`` makes every COMMIT fsync the log, so an
acknowledgement sent after :meth:`RecordStore.append` returns survives a crash
of the process or the machine.

The store keeps records exactly as the mother unit sent them (the leaf bytes
of the records log) and makes no legal decision about them: integrity comes
from the mother unit's signed checkpoints (4.2: no legally relevant software).
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


class StoreError(Exception):
    """The backend could not store or read; the message says what and where."""


class SequenceConflict(StoreError):
    """A record arrived for a sequence number that holds different bytes (A_DATA_GEN)."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"record {seq} already stored with different content")
        self.seq = seq


@dataclass(frozen=True)
class StoredRecord:
    seq: int
    leaf: bytes  # the record's canonical bytes, as sent by the mother unit
    created_at: float


class RecordStore(ABC):
    """What the storage process needs from a backend."""

    @abstractmethod
    def append(self, records: Sequence[StoredRecord], checkpoint: str) -> int:
        """Durably store records in sequence order; return the highest seq stored without a gap."""

    @abstractmethod
    def size(self) -> int:
        """Number of records stored (they are 0 .. size-1)."""

    @abstractmethod
    def read(self, first: int, last: int) -> list[StoredRecord]:
        """Records with ``first <= seq <= last``, in order."""

    @abstractmethod
    def query(
        self,
        first: int = 0,
        last: int | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[StoredRecord]:
        """Records by sequence range and/or creation-time range, in order, at most ``limit``."""

    @abstractmethod
    def scan(self, chunk: int = 10_000) -> Iterator[StoredRecord]:
        """Every record in sequence order (what a verifier reads, L6)."""

    @abstractmethod
    def checkpoints(
        self, min_size: int = 0, max_size: int | None = None, limit: int | None = None
    ) -> list[tuple[int, str]]:
        """Stored ``(tree_size, signed note)`` pairs by increasing size."""

    @abstractmethod
    def latest_checkpoint(self) -> str | None: ...

    @abstractmethod
    def close(self) -> None: ...


class SqliteStore(RecordStore):
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.read_only = read_only
        if read_only:
            # L6: a verifier reads the file and never changes it.
            if not path.is_file():
                raise StoreError(f"no record store at {path}")
            try:
                self._db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
                )
                self._db.execute("SELECT 1 FROM records LIMIT 1").fetchall()
                self._db.execute("SELECT 1 FROM checkpoints LIMIT 1").fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"cannot read record store {path}: {e}") from e
            self.path = path
            self._size = self._count()
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # L1/L8: fsync before we acknowledge
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS records (
                    seq INTEGER PRIMARY KEY,
                    leaf BLOB NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE TABLE IF NOT EXISTS checkpoints (
                    tree_size INTEGER PRIMARY KEY,
                    body TEXT NOT NULL
                );
                """
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open record store {path}: {e}") from e
        self.path = path
        self._size = self._count()

    def _count(self) -> int:
        try:
            row = self._db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM records").fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read record store {self.path}: {e}") from e
        return int(row[0])

    def size(self) -> int:
        return self._size

    def append(self, records: Sequence[StoredRecord], checkpoint: str) -> int:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                size = self._size
                for r in records:
                    if r.seq < size:
                        old = self._db.execute(
                            "SELECT leaf FROM records WHERE seq=?", (r.seq,)
                        ).fetchone()
                        if old is not None and bytes(old[0]) != r.leaf:
                            raise SequenceConflict(r.seq)
                        continue  # a retransmission of what we hold: idempotent
                    if r.seq > size:
                        break  # a gap: keep only the contiguous prefix, the sender retransmits
                    self._db.execute(
                        "INSERT INTO records (seq, leaf, created_at) VALUES (?, ?, ?)",
                        (r.seq, r.leaf, r.created_at),
                    )
                    size += 1
                # The checkpoint speaks for the tree after the whole batch: keep it
                # only if the whole batch is now stored.
                if checkpoint and records and size == records[-1].seq + 1:
                    self._db.execute(
                        "INSERT OR REPLACE INTO checkpoints (tree_size, body) VALUES (?, ?)",
                        (size, checkpoint),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"cannot store records in {self.path}: {e}") from e
        self._size = size
        return size - 1

    def read(self, first: int, last: int) -> list[StoredRecord]:
        rows = self._db.execute(
            "SELECT seq, leaf, created_at FROM records WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (first, last),
        ).fetchall()
        return [StoredRecord(int(s), bytes(leaf), float(c)) for s, leaf, c in rows]

    def query(
        self,
        first: int = 0,
        last: int | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[StoredRecord]:
        sql = "SELECT seq, leaf, created_at FROM records WHERE seq >= ?"
        args: list[float | int] = [first]
        if last is not None:
            sql += " AND seq <= ?"
            args.append(last)
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        if until is not None:
            sql += " AND created_at <= ?"
            args.append(until)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        try:
            rows = self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read record store {self.path}: {e}") from e
        return [StoredRecord(int(s), bytes(leaf), float(c)) for s, leaf, c in rows]

    def scan(self, chunk: int = 10_000) -> Iterator[StoredRecord]:
        # Ordered by the primary key; rows come as stored (a verifier must see
        # whatever is in the file, including types SQLite let someone write).
        try:
            cursor = self._db.execute("SELECT seq, leaf, created_at FROM records ORDER BY seq")
            while rows := cursor.fetchmany(chunk):
                for s, leaf, c in rows:
                    yield StoredRecord(s, leaf, c)
        except sqlite3.Error as e:
            raise StoreError(f"cannot read record store {self.path}: {e}") from e

    def scan_range(self, first: int, end: int, chunk: int = 10_000) -> Iterator[StoredRecord]:
        """Records with ``first <= seq < end`` in order, as stored (one worker's share)."""
        try:
            cursor = self._db.execute(
                "SELECT seq, leaf, created_at FROM records WHERE seq >= ? AND seq < ? "
                "ORDER BY seq",
                (first, end),
            )
            while rows := cursor.fetchmany(chunk):
                for s, leaf, c in rows:
                    yield StoredRecord(s, leaf, c)
        except sqlite3.Error as e:
            raise StoreError(f"cannot read record store {self.path}: {e}") from e

    def checkpoints(
        self, min_size: int = 0, max_size: int | None = None, limit: int | None = None
    ) -> list[tuple[int, str]]:
        sql = "SELECT tree_size, body FROM checkpoints WHERE tree_size >= ?"
        args: list[int] = [min_size]
        if max_size is not None:
            sql += " AND tree_size <= ?"
            args.append(max_size)
        sql += " ORDER BY tree_size"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        try:
            rows = self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"cannot read record store {self.path}: {e}") from e
        return [(t, b) for t, b in rows]

    def snapshot(self) -> tuple[int, list[tuple[int, str]]]:
        """Size and all checkpoints, read in one transaction (a consistent point)."""
        try:
            self._db.execute("BEGIN")
            try:
                row = self._db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM records").fetchone()
                cps = self._db.execute(
                    "SELECT tree_size, body FROM checkpoints ORDER BY tree_size"
                ).fetchall()
            finally:
                self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"cannot read record store {self.path}: {e}") from e
        return int(row[0]), [(t, b) for t, b in cps]

    def latest_checkpoint(self) -> str | None:
        row = self._db.execute(
            "SELECT body FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self._db.close()
