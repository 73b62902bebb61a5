"""The records Merkle log as the mother unit keeps it: the right edge, never a record (4.2).

Every stored measurement record is a leaf of an RFC 9162 log whose leaf bytes are
``canonical_json(record)``. The mother unit keeps

* ``head``: the edge over every record made (acknowledged or not), O(log n) hashes;
* ``acked``: the edge as of the store's last acknowledgement, plus the leaf hashes
  between the two (one per buffered record), so ``acked`` advances on each ack;
* signed checkpoints (C2SP notes, origin ``welmec-testbed/<instrument>/records``).

Only the acknowledged point is persisted (``records-log.json``: edge, last leaf
hash, its signed checkpoint and the sensors' stored watermarks, which describe the
same point), atomically and fsynced: after a restart the next record sequence
number is the acknowledged size and the sensors are asked again for every sample
after their watermark (L1). No record is ever written here (4.2: no local copy).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from security_module.checkpoint import (
    Checkpoint,
    NoteSigner,
    open_checkpoint,
    timestamp_extension,
)
from security_module.errors import SecurityError
from security_module.merkle import CompactRange, leaf_hash
from security_module.signing import canonical_json
from wire.messages import MeasurementRecord

RECORDS_LOG_FILE = "records-log.json"

class Watermark(NamedTuple):
    """What of one sensor's samples is stored at the acknowledged point."""

    boot: int
    stored_upto: int  # every seq up to here is stored (or given up)
    # Ranges (first, last) of seqs after a gap that are stored already: without them a
    # restart would make their records again once the gap is filled (stored twice, L1).
    beyond: tuple[tuple[int, int], ...] = ()


Watermarks = dict[str, Watermark]  # sensor id -> its watermark


def records_origin(instrument: str) -> str:
    """The checkpoint origin of an instrument's records log (the logbook's sibling)."""
    return f"welmec-testbed/{instrument}/records"


class RecoveryFailed(Exception):
    """Records found in the store beyond our acknowledged point do not extend our log."""


class AckedPoint(BaseModel):
    """What survives a restart: the log as of the last store acknowledgement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = 1
    size: int = Field(0, ge=0)
    edge: list[str] = Field(default_factory=list)  # hex hashes of the compact range
    last_leaf_hash: str = ""  # hex; "" for the empty log
    checkpoint: str = ""  # signed note of the tree of ``size`` leaves
    watermarks: dict[str, tuple[int, int]] = Field(default_factory=dict)  # (boot, stored_upto)
    stored_beyond: dict[str, list[tuple[int, int]]] = Field(default_factory=dict)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` durably: temp file, fsync, rename, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass
class RecordsLog:
    """Pure bookkeeping of the records log; the only I/O is :meth:`persist`."""

    signer: NoteSigner
    origin: str
    path: Path
    checkpoint_every: int = 200  # also sign at these sizes, so any resent batch end has one
    acked: CompactRange = field(default_factory=CompactRange)
    head: CompactRange = field(default_factory=CompactRange)
    last_leaf: bytes = b""
    acked_last_leaf: bytes = b""
    watermarks: Watermarks = field(default_factory=dict)  # as persisted (L1: acks up to here)
    persisted_size: int = 0  # the acknowledged size on disk
    _pending: deque[bytes] = field(default_factory=deque)
    _notes: dict[int, str] = field(default_factory=dict)

    @classmethod
    def open(
        cls, signer: NoteSigner, origin: str, path: Path, checkpoint_every: int = 200
    ) -> RecordsLog:
        log = cls(signer, origin, path, checkpoint_every)
        if path.exists():
            point = AckedPoint.model_validate_json(path.read_bytes())
            edge = CompactRange(point.size, [bytes.fromhex(h) for h in point.edge])
            log.acked = edge
            log.persisted_size = point.size
            log.head = CompactRange(edge.size, edge.hashes)
            log.last_leaf = log.acked_last_leaf = bytes.fromhex(point.last_leaf_hash)
            log.watermarks = {
                k: Watermark(b, s, tuple(point.stored_beyond.get(k, ())))
                for k, (b, s) in point.watermarks.items()
            }
            if point.checkpoint:
                log._notes[point.size] = point.checkpoint
        return log

    @property
    def next_seq(self) -> int:
        return self.head.size

    @property
    def acked_size(self) -> int:
        return self.acked.size

    def append(self, record: MeasurementRecord) -> tuple[MeasurementRecord, bytes]:
        """L7: make ``record`` the next leaf; returns it (chained to the previous leaf) + bytes."""
        if record.seq != self.head.size:
            raise ValueError(f"record {record.seq} is not the next leaf {self.head.size}")
        record = record.model_copy(update={"prev_leaf_hash": self.last_leaf.hex()})
        leaf = canonical_json(record)
        lh = leaf_hash(leaf)
        self.head.append_hash(lh)
        self._pending.append(lh)
        self.last_leaf = lh
        if self.head.size % self.checkpoint_every == 0:
            self._notes[self.head.size] = self._sign(self.head)
        return record, leaf

    def _sign(self, edge: CompactRange) -> str:
        now = dt.datetime.now(dt.UTC)
        cp = Checkpoint(self.origin, edge.size, edge.root(), (timestamp_extension(now),))
        return self.signer.sign(cp).note

    def checkpoint_at(self, size: int) -> str:
        """The signed checkpoint of the first ``size`` leaves: the head, a signed
        boundary, or the acknowledged point; "" if none is at hand (then none is sent)."""
        note = self._notes.get(size)
        if note is None and size == self.head.size:
            note = self._notes[size] = self._sign(self.head)
        if note is None and size == self.acked.size:
            note = self._notes[size] = self._sign(self.acked)
        return note or ""

    def acknowledge(self, stored_upto: int) -> int:
        """The store holds records ``0..stored_upto`` durably: advance the acked edge."""
        n = 0
        while self.acked.size <= stored_upto and self._pending:
            lh = self._pending.popleft()
            self.acked.append_hash(lh)
            self.acked_last_leaf = lh
            n += 1
        if n:
            for size in [s for s in self._notes if s < self.acked.size]:
                del self._notes[size]
        return n

    def point(self, watermarks: Watermarks) -> AckedPoint:
        size = self.acked.size
        return AckedPoint(
            size=size,
            edge=[h.hex() for h in self.acked.hashes],
            last_leaf_hash=self.acked_last_leaf.hex(),
            checkpoint=self.checkpoint_at(size) if size else "",
            watermarks={k: (w.boot, w.stored_upto) for k, w in watermarks.items()},
            stored_beyond={k: list(w.beyond) for k, w in watermarks.items() if w.beyond},
        )

    def snapshot(self, watermarks: Watermarks) -> bytes:
        """The acknowledged point with these watermarks, as :meth:`persist` writes it.

        Taken on the event loop, so the edge and the watermarks describe one moment;
        the write may then happen elsewhere (a thread) and :meth:`persisted` follows it.
        """
        return self.point(watermarks).model_dump_json().encode()

    def persisted(self, watermarks: Watermarks, size: int) -> None:
        """The snapshot of size ``size`` with these watermarks is on disk: sensors may be
        acknowledged up to them."""
        self.watermarks = dict(watermarks)
        self.persisted_size = size

    def moved(self, watermarks: Watermarks) -> bool:
        """The acknowledged point or the watermarks differ from what is on disk."""
        return self.acked.size != self.persisted_size or watermarks != self.watermarks

    def persist(self, watermarks: Watermarks) -> None:
        """Durably record the acknowledged point (before any sensor is acknowledged for it)."""
        write_atomically(self.path, self.snapshot(watermarks))
        self.persisted(watermarks, self.acked.size)

    def recover(self, leaves: list[bytes], notes: list[str]) -> list[MeasurementRecord]:
        """Adopt records the store holds beyond our acknowledged point (a crash came
        between its commit and our persisting the ack): only as far as a checkpoint
        signed by us proves them ours. Returns the adopted records."""
        if self._pending:
            raise RecoveryFailed("recovery only before the first new record")
        verifier = self.signer.verifier
        best: tuple[int, bytes, str] | None = None
        for note in notes:
            try:
                cp = open_checkpoint(note, verifier, origin=self.origin)
            except SecurityError:
                continue
            fits = self.acked.size < cp.size <= self.acked.size + len(leaves)
            if fits and (best is None or cp.size > best[0]):
                best = (cp.size, cp.root_hash, note)
        if best is None:
            return []
        size, root, note = best
        edge = CompactRange(self.acked.size, self.acked.hashes)
        records: list[MeasurementRecord] = []
        last = self.acked_last_leaf
        for leaf in leaves[: size - self.acked.size]:
            record = MeasurementRecord.model_validate_json(leaf)
            if record.seq != edge.size or record.prev_leaf_hash != last.hex():
                raise RecoveryFailed(f"stored record {record.seq} does not extend the log")
            last = leaf_hash(leaf)
            edge.append_hash(last)
            records.append(record)
        if edge.root() != root:
            raise RecoveryFailed(f"stored records up to {size} do not match our checkpoint")
        self.acked = edge
        self.head = CompactRange(edge.size, edge.hashes)
        self.last_leaf = self.acked_last_leaf = last
        self._notes[size] = note
        return records


def describe(path: Path) -> dict[str, object]:
    """The persisted acknowledged point as plain data (tests, status)."""
    data: dict[str, object] = json.loads(path.read_text())
    return data
