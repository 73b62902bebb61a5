"""The logbook (audit trail): an append-only Merkle log with a non-resettable event counter.

MID Annex I 8.2 / WELMEC 7.2 L: every legally relevant intervention leaves evidence.

File format (``logbook.jsonl``, one canonical-JSON entry per line, fsync per entry)::

    {"data":{...},"event_counter":3,"index":7,"legally_relevant":true,
     "prev_root":"<hex MTH of entries 0..index-1>","time":"2025-...Z","type":"pairing"}

* Leaf ``i`` of the RFC 9162 tree is the exact bytes of line ``i`` (without "\\n").
* ``prev_root`` chains every entry to all earlier ones, so an edited middle line is
  named precisely: the chain breaks at the next entry.
* ``event_counter`` is the number of legally relevant entries up to and including this
  one. It is derived from the entries themselves and checked on open: it cannot be
  reset or go down without breaking the tree and the signed checkpoints.
* A torn last line (crash during a write: no newline, or not JSON) is moved to
  ``logbook.jsonl.torn`` and a ``recovered_torn_entry`` entry is appended - never
  silently dropped, never a crash.
* ``checkpoints.jsonl`` keeps every signed checkpoint (``{"note": "<signed note>"}``
  per line); ``checkpoint.txt`` holds the newest note verbatim for other tools.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from security_module.checkpoint import (
    Checkpoint,
    NoteSigner,
    SignedCheckpoint,
    timestamp_extension,
)
from security_module.errors import LogbookCorrupt, StateFileError
from security_module.merkle import ConsistencyProof, InclusionProof, MerkleTree
from security_module.signing import canonical_json

__all__ = [
    "CHECKPOINTS_FILE",
    "LATEST_CHECKPOINT_FILE",
    "LEGALLY_RELEVANT_TYPES",
    "LOGBOOK_FILE",
    "EntryType",
    "LogEntry",
    "Logbook",
    "append_durably",
    "read_checkpoint_notes",
    "scan_logbook",
]

LOGBOOK_FILE = "logbook.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"
LATEST_CHECKPOINT_FILE = "checkpoint.txt"
DEFAULT_ORIGIN = "welmec-testbed/logbook"


class EntryType:
    """Entry types in use (any snake_case string is allowed)."""

    STARTUP = "startup"
    SHUTDOWN = "shutdown"
    PAIRING = "pairing"
    UNPAIRING = "unpairing"
    SOFTWARE_ID_MISMATCH = "software_id_mismatch"
    SENSOR_REJECTED = "sensor_rejected"
    PARAMETER_CHANGE = "parameter_change"
    SOFTWARE_UPDATE = "software_update"
    STATE_CHANGE = "state_change"
    AUTHENTICATION_FAILURE = "authentication_failure"
    RECOVERED_TORN_ENTRY = "recovered_torn_entry"


# Interventions that raise the event counter by default (MID 8.2; WELMEC 7.2 P8/U8).
LEGALLY_RELEVANT_TYPES: frozenset[str] = frozenset({
    EntryType.PAIRING, EntryType.UNPAIRING, EntryType.SOFTWARE_ID_MISMATCH,
    EntryType.PARAMETER_CHANGE, EntryType.SOFTWARE_UPDATE,
})


class LogEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    time: dt.datetime
    type: str = Field(min_length=1)
    legally_relevant: bool
    event_counter: int = Field(ge=0)
    prev_root: str = Field(pattern=r"^[0-9a-f]{64}$")
    data: dict[str, Any] = Field(default_factory=dict)

    def line(self) -> bytes:
        return canonical_json(self)


def append_durably(path: Path, line: bytes) -> None:
    """Append one line and fsync before returning (the entry exists once this returns)."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(line)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # make the new directory entry durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@dataclass
class ScanResult:
    """What a scan of the logbook bytes found (shared by open and verify)."""

    entries: list[LogEntry]
    tree: MerkleTree
    good_length: int  # bytes up to the end of the last complete, parseable line
    torn: bytes | None = None  # the torn tail, if any
    first_bad_index: int | None = None
    problems: list[str] = field(default_factory=list)

    def bad(self, index: int, problem: str) -> None:
        if self.first_bad_index is None:
            self.first_bad_index = index
        if len(self.problems) < 20:
            self.problems.append(problem)


def scan_logbook(data: bytes) -> ScanResult:
    """Recompute the tree and check every entry; never raises on bad content."""
    result = ScanResult([], MerkleTree(), 0)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" if the file ends with a newline, else a partial line
    if tail:
        result.torn = tail
    offset = 0
    counter = 0
    for i, raw in enumerate(lines):
        is_last = i == len(lines) - 1
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            if is_last and result.torn is None:
                result.torn = raw + b"\n"  # a torn write that still got its newline
                break
            result.bad(i, f"entry {i}: not valid JSON")
            result.tree.append(raw)
            continue
        root_before = result.tree.root()
        result.tree.append(raw)
        if result.first_bad_index is not None:
            continue  # keep building the tree for checkpoint comparison only
        try:
            entry = LogEntry.model_validate(obj)
        except ValidationError as e:
            result.bad(i, f"entry {i}: invalid entry ({e.error_count()} errors)")
            continue
        if entry.line() != raw:
            result.bad(i, f"entry {i}: not in canonical form (edited?)")
        elif entry.index != i:
            result.bad(i, f"entry {i}: index field says {entry.index}")
        elif entry.prev_root != root_before.hex():
            # The chain breaks here: the previous entry changed after this one was written.
            j = max(i - 1, 0)
            result.bad(j, f"entry {j}: altered, inserted or removed (hash chain breaks at {i})")
        elif entry.event_counter != counter + int(entry.legally_relevant):
            result.bad(i, f"entry {i}: event counter {entry.event_counter} does not follow "
                          f"{counter} (MID 8.2: it never goes down or skips)")
        else:
            counter = entry.event_counter
            result.entries.append(entry)
        offset += len(raw) + 1
        if result.first_bad_index is None:
            result.good_length = offset
    return result


def read_checkpoint_notes(path: Path) -> list[str]:
    """All signed notes in ``checkpoints.jsonl`` (a torn last line is skipped)."""
    if not path.exists():
        return []
    notes: list[str] = []
    lines = path.read_bytes().split(b"\n")
    for i, raw in enumerate(lines):
        if not raw:
            continue
        try:
            note = json.loads(raw)["note"]
        except (ValueError, KeyError, TypeError) as e:
            if i >= len(lines) - 2:
                continue  # torn last line of a crash: the checkpoint was never published
            raise StateFileError(f"{path}: line {i + 1} is not a checkpoint",
                                 path=str(path)) from e
        notes.append(str(note))
    return notes


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Logbook:
    """The mother unit's logbook: append, prove, checkpoint. File I/O only, no network.

    Opening recomputes the tree from the file; a torn last line is recovered and
    recorded; any other inconsistency raises :class:`LogbookCorrupt` naming the entry.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        origin: str = DEFAULT_ORIGIN,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        p = Path(path)
        self.path = p / LOGBOOK_FILE if p.is_dir() else p
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.checkpoints_path = self.path.parent / CHECKPOINTS_FILE
        self.latest_checkpoint_path = self.path.parent / LATEST_CHECKPOINT_FILE
        self.origin = origin
        self._clock = clock
        data = self.path.read_bytes() if self.path.exists() else b""
        scan = scan_logbook(data)
        if scan.first_bad_index is not None:
            raise LogbookCorrupt(
                f"logbook {self.path} is corrupt: {scan.problems[0]}",
                first_bad_index=scan.first_bad_index, path=str(self.path),
            )
        self._entries = scan.entries
        self._tree = scan.tree
        if scan.torn is not None:
            self._recover_torn(scan.torn, scan.good_length)

    def _recover_torn(self, torn: bytes, good_length: int) -> None:
        # Keep the torn bytes first (durably), then cut them off, then log the recovery.
        torn_path = self.path.with_name(self.path.name + ".torn")
        record = json.dumps({
            "time": self._clock().isoformat(),
            "offset": good_length,
            "bytes_b64": base64.b64encode(torn).decode(),
        }).encode() + b"\n"
        append_durably(torn_path, record)
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, good_length)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.append(EntryType.RECOVERED_TORN_ENTRY, {
            "torn_file": torn_path.name,
            "offset": good_length,
            "length": len(torn),
            "sha256": hashlib.sha256(torn).hexdigest(),
        }, legally_relevant=False)

    # --- reading ---------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def event_counter(self) -> int:
        """The non-resettable event counter (MID 8.2): legally relevant entries so far."""
        return self._entries[-1].event_counter if self._entries else 0

    @property
    def entries(self) -> list[LogEntry]:
        return list(self._entries)

    def entry(self, index: int) -> LogEntry:
        return self._entries[index]

    def root(self, size: int | None = None) -> bytes:
        return self._tree.root(size)

    def leaf_hash(self, index: int) -> bytes:
        return self._tree.leaf_hash_at(index)

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, first: int, second: int | None = None) -> ConsistencyProof:
        return self._tree.consistency_proof(first, second)

    # --- writing ---------------------------------------------------------------------
    def append(
        self,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        legally_relevant: bool | None = None,
        time: dt.datetime | None = None,
    ) -> LogEntry:
        """Append an entry durably (fsync) and return it.

        ``legally_relevant`` defaults to ``type in LEGALLY_RELEVANT_TYPES``; if true the
        event counter goes up by one (MID 8.2).
        """
        relevant = type in LEGALLY_RELEVANT_TYPES if legally_relevant is None else legally_relevant
        entry = LogEntry(
            index=len(self._entries),
            time=time or self._clock(),
            type=type,
            legally_relevant=relevant,
            event_counter=self.event_counter + int(relevant),
            prev_root=self._tree.root().hex(),
            data=dict(data or {}),
        )
        line = entry.line()
        append_durably(self.path, line + b"\n")
        self._tree.append(line)
        self._entries.append(entry)
        return entry

    def checkpoint(
        self, signer: NoteSigner, *, time: dt.datetime | None = None
    ) -> SignedCheckpoint:
        """Sign the current tree head and keep it (all checkpoints are kept)."""
        cp = Checkpoint(self.origin, self.size, self.root(),
                        (timestamp_extension(time or self._clock()),))
        signed = signer.sign(cp)
        append_durably(self.checkpoints_path,
                       json.dumps({"note": signed.note}).encode() + b"\n")
        tmp = self.latest_checkpoint_path.with_name(LATEST_CHECKPOINT_FILE + ".tmp")
        tmp.write_text(signed.note, encoding="utf-8")
        os.replace(tmp, self.latest_checkpoint_path)
        return signed

    def checkpoint_notes(self) -> list[str]:
        return read_checkpoint_notes(self.checkpoints_path)
