"""The L6 verifier of the remote store: rebuild the records log and check it (pure logic).

Works from the public key of the mother unit and the type approval alone (never a
private key, never the mother unit process). Given the stored rows and checkpoints
(from the SQLite file or the store's query interface) it checks:

1. sequence continuity - every seq 0..n-1 present once (L1);
2. every leaf parses as a MeasurementRecord of this instrument, carries its own seq
   and software identifiers the type approval lists (L4, P2/U2);
3. the hash chain (``prev_leaf_hash``) - names the one altered record between two
   checkpoints (L3);
4. the log against the newest checkpoint signed by the mother unit: signature,
   origin, root over the rebuilt tree at its size, and every earlier stored
   checkpoint's root (consistency: each is a prefix of the same log);
5. that every stored record is covered by a signed checkpoint (nothing inserted).

Speed: leaves are hashed with hashlib in a tight loop and the tree is built level
by level (``bench_verify``); pydantic validates each leaf (faster than json.loads).
"""

from __future__ import annotations

import binascii
import hashlib
import multiprocessing
import os
import tempfile
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from remote_storage.store import SqliteStore, StoredRecord
from security_module.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    parse_signed_note,
)
from security_module.errors import SecurityError
from security_module.merkle import CompactRange
from security_module.signing import canonical_json
from wire.messages import MeasurementRecord

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()
MAX_LISTED_PER_RANGE = 100_000


@dataclass(frozen=True)
class BadRecord:
    """One record that must not be used (L6), with why."""

    seq: int
    reason: str


@dataclass
class StoreVerification:
    """The verifier's result: ``ok`` only if nothing at all is wrong."""

    source: str
    records: int = 0
    checkpoints: int = 0
    signed_size: int | None = None  # size of the newest checkpoint with a valid signature
    verified_upto: int = 0  # records 0..verified_upto-1 are proven in the signed log
    root: str = ""
    bad: dict[int, BadRecord] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    parsed: dict[int, MeasurementRecord] = field(default_factory=dict)
    chain_breaks: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.problems

    def flag(self, seq: int, reason: str) -> None:
        if seq not in self.bad:
            self.bad[seq] = BadRecord(seq, reason)

    def status_of(self, seq: int) -> str:
        """What a person checking an invoice is told about one record (L4, L6)."""
        if seq in self.bad:
            return "CORRUPTED: " + self.bad[seq].reason
        if seq < self.verified_upto:
            return "verified"
        return "not verified: not covered by a signed checkpoint"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "signed_size": self.signed_size,
            "verified_upto": self.verified_upto,
            "root": self.root,
            "bad_records": [
                {"seq": b.seq, "reason": b.reason} for b in sorted(self.bad.values(), key=_seq)
            ],
            "problems": self.problems,
            "warnings": self.warnings,
            "elapsed_s": round(self.elapsed_s, 4),
        }


def _seq(b: BadRecord) -> int:
    return b.seq


def _as_bytes(leaf: object) -> bytes | None:
    if isinstance(leaf, bytes):
        return leaf
    if isinstance(leaf, bytearray | memoryview):
        return bytes(leaf)
    if isinstance(leaf, str):  # an edit with the sqlite3 shell may turn a BLOB into TEXT
        return leaf.encode("utf-8", "surrogatepass")
    return None


def build_levels(leaf_hashes: bytearray) -> list[bytes]:
    """Every level of complete, aligned subtrees, level by level (RFC 9162 node hash)."""
    levels = [bytes(leaf_hashes)]
    cur = levels[0]
    while len(cur) >= 64:
        pairs = len(cur) // 64
        nxt = b"".join(
            [_sha256(b"\x01" + cur[i : i + 64]).digest() for i in range(0, pairs * 64, 64)]
        )
        levels.append(nxt)
        cur = nxt
    return levels


def root_at(levels: list[bytes], size: int) -> bytes:
    """MTH of the first ``size`` leaves from the cached levels: O(log n) hashes."""
    if size == 0:
        return EMPTY_ROOT
    parts: list[bytes] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            i = start >> level
            parts.append(levels[level][i * 32 : (i + 1) * 32])
            start += 1 << level
    r = parts[-1]
    for h in reversed(parts[:-1]):
        r = _sha256(b"\x01" + h + r).digest()
    return r


def _parse_unsigned(note: str) -> Checkpoint | None:
    """The checkpoint body without checking the signature (that is done where it counts).

    Fast path for the common shape (origin, size, root, one extension line); anything
    else goes through the full signed-note parser.
    """
    parts = note.split("\n", 3)
    if len(parts) == 4 and parts[1].isdigit() and len(parts[2]) == 44:
        try:
            root = binascii.a2b_base64(parts[2], strict_mode=True)
            return Checkpoint(parts[0], int(parts[1]), root)
        except (binascii.Error, ValueError):
            pass
    try:
        text, _ = parse_signed_note(note)
        return Checkpoint.parse(text)
    except (SecurityError, ValueError):
        return None


@dataclass
class _Chunk:
    """What one pass over the rows ``lo <= seq < hi`` found (mergeable across workers)."""

    lo: int
    hi: int | None
    hashes: bytearray = field(default_factory=bytearray)
    bad: dict[int, BadRecord] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    parsed: dict[int, MeasurementRecord] = field(default_factory=dict)
    chain_breaks: list[int] = field(default_factory=list)  # seqs whose link misses seq-1
    end: int = 0  # one past the last seq seen
    first_link: str | None = None  # prev_leaf_hash of record ``lo`` if it sits at ``lo``
    last_hex: str = ""  # leaf hash of the last row, if it is ``end - 1`` and in place

    def flag(self, seq: int, reason: str) -> None:
        if seq not in self.bad:
            self.bad[seq] = BadRecord(seq, reason)


def _scan(  # noqa: PLR0912, PLR0915, PLR0917 - the per-record checks, one tight loop
    rows: Iterable[tuple[Any, Any, Any]],
    lo: int,
    hi: int | None,
    instrument: str,
    approved_pairs: set[tuple[str, str]],
    keep_records: bool,
) -> _Chunk:
    chunk = _Chunk(lo, hi)
    flag = chunk.flag
    hashes = chunk.hashes
    validate = MeasurementRecord.model_validate_json
    sha = _sha256
    expected = lo
    prev_hex = ""  # leaf hash (hex) of the row before, if it is seq expected-1 and in place
    seen_software: set[tuple[str, str]] = set()
    for seq, raw, _created in rows:
        if not isinstance(seq, int) or seq < 0:
            chunk.problems.append(f"a row has an invalid sequence number {seq!r}")
            continue
        if seq < expected:
            flag(seq, "stored twice (duplicate sequence number)")
            continue
        if seq > expected:
            for s in range(expected, min(seq, expected + MAX_LISTED_PER_RANGE)):
                flag(s, "missing: deleted from the store (sequence gap)")
            prev_hex = ""
        expected = seq + 1
        leaf = _as_bytes(raw)
        if leaf is None:
            flag(seq, "leaf is not bytes")
            hashes += bytes(32)
            prev_hex = ""
            continue
        lh = sha(b"\x00" + leaf).digest()
        hashes += lh
        lh_hex = lh.hex()
        try:
            rec = validate(leaf)
        except ValidationError as e:
            err = e.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            flag(seq, f"not a valid record ({where}: {err['msg']})"[:200])
            prev_hex = ""
            continue
        if rec.seq != seq:
            flag(seq, f"holds record {rec.seq}: moved or swapped")
            prev_hex = ""
            continue
        if rec.instrument != instrument:
            flag(seq, f"record of another instrument {rec.instrument}")
        if seq == lo:
            chunk.first_link = rec.prev_leaf_hash
        elif prev_hex and rec.prev_leaf_hash != prev_hex:
            # L3: record seq-1 is not the one record seq was chained to.
            chunk.chain_breaks.append(seq)
        if seq == 0 and rec.prev_leaf_hash:
            flag(seq, "first record claims a predecessor")
        for pair in rec.software_ids.items():
            if pair not in seen_software:
                if pair not in approved_pairs:
                    flag(seq, f"software identifier of {pair[0]} not in the type approval")
                    break
                seen_software.add(pair)
        if keep_records:
            chunk.parsed[seq] = rec
        prev_hex = lh_hex
    chunk.end = expected
    chunk.last_hex = prev_hex
    return chunk


def _merge(chunks: list[_Chunk], result: StoreVerification) -> bytearray:
    hashes = bytearray()
    prev: _Chunk | None = None
    for c in chunks:
        if prev is not None and c.lo > prev.end and c.hashes:
            for s in range(prev.end, min(c.lo, prev.end + MAX_LISTED_PER_RANGE)):
                result.flag(s, "missing: deleted from the store (sequence gap)")
        if (
            prev is not None
            and c.first_link is not None
            and prev.end == c.lo
            and prev.last_hex
            and c.first_link != prev.last_hex
        ):
            result.chain_breaks.append(c.lo)
        hashes += c.hashes
        result.problems += c.problems
        for seq, b in c.bad.items():
            result.flag(seq, b.reason)
        result.parsed.update(c.parsed)
        result.chain_breaks += c.chain_breaks
        if c.hashes or c.end > c.lo:
            prev = c
    return hashes


def verify_rows(
    rows: Iterable[tuple[Any, Any, Any]],
    checkpoints: Iterable[tuple[Any, Any]],
    *,
    verifier: NoteVerifier,
    origin: str,
    instrument: str,
    approved: Mapping[str, Collection[str]],
    source: str = "",
    keep_records: bool = False,
) -> StoreVerification:
    """Verify stored ``(seq, leaf, created_at)`` rows and ``(tree_size, note)`` checkpoints."""
    t0 = time.perf_counter()
    pairs = approved_pairs(approved)
    chunk = _scan(rows, 0, None, instrument, pairs, keep_records)
    return finish([chunk], checkpoints, verifier=verifier, origin=origin, source=source, t0=t0)


def approved_pairs(approved: Mapping[str, Collection[str]]) -> set[tuple[str, str]]:
    return {(c, s) for c, ids in approved.items() for s in ids}


def finish(  # noqa: PLR0912, PLR0915 - the log checks in the order of the module docstring
    chunks: list[_Chunk],
    checkpoints: Iterable[tuple[Any, Any]],
    *,
    verifier: NoteVerifier,
    origin: str,
    source: str,
    t0: float,
) -> StoreVerification:
    """Merge the per-record passes and check the log against the stored checkpoints."""
    result = StoreVerification(source=source)
    flag = result.flag
    hashes = _merge(chunks, result)
    n = len(hashes) // 32
    result.records = n
    levels = build_levels(hashes)

    # Checkpoints: the rows' sizes must be what their notes say; each root must be the
    # rebuilt tree's root at that size (consistency of all checkpoints with one log).
    parsed: list[tuple[int, Checkpoint, str]] = []
    for size, note in checkpoints:
        result.checkpoints += 1
        cp = _parse_unsigned(note) if isinstance(note, str) else None
        if cp is None:
            result.problems.append(f"stored checkpoint at size {size} is malformed")
            continue
        if cp.size != size:
            result.problems.append(
                f"stored checkpoint at size {size} is a checkpoint of size {cp.size} "
                "(replaced by another one)"
            )
        parsed.append((cp.size, cp, note))
    parsed.sort(key=lambda t: t[0])

    def signed(note: str) -> bool:
        try:
            open_checkpoint(note, verifier, origin=origin)
        except SecurityError:
            return False
        return True

    trusted: Checkpoint | None = None
    for _size, cp, note in reversed(parsed):
        if signed(note):
            trusted = cp
            break
        result.problems.append(
            f"checkpoint of size {cp.size} is not validly signed by {verifier.name} "
            f"for {origin}"
        )
    if trusted is None:
        if n:
            result.problems.append("no checkpoint signed by the mother unit: nothing verifiable")
            for s in range(min(n, MAX_LISTED_PER_RANGE)):
                flag(s, "not covered by a signed checkpoint")
        result.elapsed_s = time.perf_counter() - t0
        return result
    result.signed_size = trusted.size
    if trusted.size > n:
        result.problems.append(
            f"the signed log has {trusted.size} records, the store {n}: tail missing"
        )
        for s in range(n, min(trusted.size, n + MAX_LISTED_PER_RANGE)):
            flag(s, "missing: the signed log is longer (tail truncated)")
    elif trusted.size < n:
        for s in range(trusted.size, min(n, trusted.size + MAX_LISTED_PER_RANGE)):
            flag(s, "not covered by a signed checkpoint (inserted, or checkpoint replaced)")

    # Roots: find the largest prefix proven by a matching checkpoint, and where it breaks.
    good_upto = 0
    broken_at: int | None = None
    for size, cp, note in parsed:
        if size > n or size > trusted.size:
            continue
        if root_at(levels, size) == cp.root_hash:
            if broken_at is None:
                good_upto = size
            continue
        if not signed(note):
            result.problems.append(f"checkpoint of size {size} is forged (bad signature)")
            continue
        if broken_at is None:
            broken_at = size
            result.problems.append(
                f"signed checkpoint of size {size} does not match the stored records "
                f"(records before {size} altered)"
            )
    result.verified_upto = good_upto if broken_at is not None else min(trusted.size, n)
    # L3: a broken chain link in record k says record k-1 was altered - unless k-1 is
    # proven by a signed root, then record k itself is not the mother unit's.
    for k in result.chain_breaks:
        if k - 1 < result.verified_upto:
            flag(k, f"forged: its chain link does not match record {k - 1}")
        else:
            flag(k - 1, f"altered: does not match the hash chained into record {k}")
    # The hash chain named the altered record(s), or else the break is in the
    # last record of the first broken range (the chain has no successor there).
    if broken_at is not None and not any(good_upto <= s < broken_at for s in result.bad):
        flag(broken_at - 1, f"altered: checkpoint {broken_at} root does not match")
    result.root = root_at(levels, min(trusted.size, n)).hex()
    if result.bad:
        result.warnings.append(
            f"stored data changed: {len(result.bad)} record(s) must not be used (L6)"
        )
    result.elapsed_s = time.perf_counter() - t0
    return result


@dataclass(frozen=True)
class _Job:
    path: str
    lo: int
    hi: int
    instrument: str
    pairs: frozenset[tuple[str, str]]


def _scan_range(job: _Job) -> _Chunk:
    store = SqliteStore(Path(job.path), read_only=True)
    try:
        rows = ((r.seq, r.leaf, r.created_at) for r in store.scan_range(job.lo, job.hi))
        return _scan(rows, job.lo, job.hi, job.instrument, set(job.pairs), False)
    finally:
        store.close()


def verify_sqlite(
    path: Path,
    *,
    verifier: NoteVerifier,
    origin: str,
    instrument: str,
    approved: Mapping[str, Collection[str]],
    keep_records: bool = False,
    workers: int | None = None,
) -> StoreVerification:
    """Verify a SQLite store read-only; large stores are scanned by ``workers`` processes."""
    t0 = time.perf_counter()
    store = SqliteStore(path, read_only=True)
    try:
        # One read transaction: the store commits records and their checkpoint together,
        # so a running store is seen at a consistent point; workers read only seq < end.
        end, checkpoints = store.snapshot()
        pairs = approved_pairs(approved)
        n_workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
        if keep_records or n_workers <= 1 or end < 20_000:
            rows = ((r.seq, r.leaf, r.created_at) for r in store.scan())
            chunks = [_scan(rows, 0, None, instrument, pairs, keep_records)]
        else:
            step = -(-end // (n_workers * 2))
            jobs = [_Job(str(path), lo, min(lo + step, end), instrument, frozenset(pairs))
                    for lo in range(0, end, step)]
            # fork: the workers inherit the imported modules and start in milliseconds.
            with multiprocessing.get_context("fork").Pool(n_workers) as pool:
                chunks = pool.map(_scan_range, jobs)
    finally:
        store.close()
    return finish(chunks, checkpoints, verifier=verifier, origin=origin,
                  source=str(path), t0=t0)


def synthetic_store(
    path: Path,
    n: int,
    batch: int = 5,
    *,
    signer: NoteSigner | None = None,
    instrument: str = "gm-0001",
    software_ids: Mapping[str, str] | None = None,
) -> tuple[NoteVerifier, str, dict[str, str]]:
    """A SQLite store of ``n`` signed records as the mother unit makes them (benches, tests)."""
    signer = signer or NoteSigner(f"{instrument}/mother-unit", Ed25519PrivateKey.generate())
    origin = f"welmec-testbed/{instrument}/records"
    sids = dict(software_ids or {"remote_processing": "ab" * 32, "mother_unit": "ab" * 32})
    edge = CompactRange()
    store = SqliteStore(path)
    prev = ""
    pending: list[StoredRecord] = []
    for i in range(n):
        rec = MeasurementRecord(
            instrument=instrument, seq=i, sensor_id="sensor-1", sample_boot=1, sample_seq=i,
            created_at=1.7e9 + i / 100, received_at=1.7e9 + i / 100 + 0.001,
            vm=1000 + i / 1e3, vb=990 + i / 1e3, p=101.325, t=288.15, parameter_version="pv-1",
            software_ids=sids, prev_leaf_hash=prev,
        )
        leaf = canonical_json(rec)
        lh = _sha256(b"\x00" + leaf).digest()
        edge.append_hash(lh)
        prev = lh.hex()
        pending.append(StoredRecord(i, leaf, rec.created_at))
        if (i + 1) % batch == 0 or i == n - 1:
            note = signer.sign(Checkpoint(origin, i + 1, edge.root())).note
            store.append(pending, note)
            pending = []
    store.close()
    return signer.verifier, origin, sids


def bench_verify(n: int = 100_000, batch: int = 5) -> dict[str, float]:
    """Verify a SQLite store of ``n`` records (a checkpoint every ``batch``): records/s."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.sqlite"
        verifier, origin, sids = synthetic_store(path, n, batch)
        t0 = time.perf_counter()
        result = verify_sqlite(path, verifier=verifier, origin=origin, instrument="gm-0001",
                               approved={k: [v] for k, v in sids.items()})
        elapsed = time.perf_counter() - t0
    if not result.ok:
        raise AssertionError(f"synthetic store did not verify: {result.to_dict()}")
    return {"records": n, "checkpoints": result.checkpoints, "seconds": round(elapsed, 3),
            "records_per_s": round(n / elapsed)}
