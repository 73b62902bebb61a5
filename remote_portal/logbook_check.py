"""Checking what the portal shows of the logbook, without trusting the mother unit's reply.

The mother unit publishes its newest signed checkpoint (C2SP signed note) retained on
``mother/checkpoint``; the portal opens it with the mother unit's public key (from its
certificate, checked against the manufacturer CA). A logbook excerpt answered through
the protective interface carries each entry's exact line and its RFC 9162 inclusion
proof for the checkpoint's tree size: an entry is shown as *verified* only if its
leaf hash is included under the signed root (MID Annex I 8.2: the evidence a visitor
sees is the evidence the instrument signed). Pure functions, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from security_module.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from security_module.errors import SecurityError
from security_module.merkle import InclusionProof, leaf_hash, verify_inclusion

MAX_ENTRIES = 20


@dataclass(frozen=True)
class VerifiedCheckpoint:
    size: int
    root_hex: str
    origin: str
    timestamp: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size, "root": self.root_hex, "origin": self.origin,
            "timestamp": self.timestamp,
        }


def check_checkpoint(
    note: str, verifier: NoteVerifier, origin: str | None = None
) -> VerifiedCheckpoint:
    """Open the signed note; raises SecurityError (signature, origin, format)."""
    cp: Checkpoint = open_checkpoint(note, verifier, origin=origin)
    ts = cp.timestamp
    return VerifiedCheckpoint(
        size=cp.size, root_hex=cp.root_hash.hex(), origin=cp.origin,
        timestamp=None if ts is None else ts.isoformat(),
    )


@dataclass(frozen=True)
class ShownEntry:
    """One logbook entry as the page shows it; every text field is attacker-controlled."""

    index: int
    time: str
    type: str
    legally_relevant: bool
    event_counter: int
    data: str  # the entry's data as JSON text: shown literally, never as HTML
    included: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "time": self.time, "type": self.type,
            "legally_relevant": self.legally_relevant, "event_counter": self.event_counter,
            "data": self.data, "included": self.included,
        }


@dataclass(frozen=True)
class LogbookExcerpt:
    status: str  # "verified" | "failed" | "unverified"
    message: str
    checkpoint: VerifiedCheckpoint | None = None
    entries: list[ShownEntry] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "checkpoint": None if self.checkpoint is None else self.checkpoint.as_json(),
            "entries": [e.as_json() for e in self.entries],
        }


def _str(value: object, limit: int = 200) -> str:
    return str(value)[:limit]


def check_excerpt(
    checkpoint: VerifiedCheckpoint, data: dict[str, Any]
) -> LogbookExcerpt:
    """Verify a ``get_logbook_excerpt`` reply against a verified checkpoint."""
    try:
        size = int(data["tree_size"])
        first = int(data["first"])
        lines = json.loads(str(data["entries"]))
        proofs = json.loads(str(data["proofs"]))
        if not (isinstance(lines, list) and isinstance(proofs, list)):
            raise TypeError("entries and proofs must be lists")
        if len(lines) != len(proofs) or len(lines) > MAX_ENTRIES:
            raise ValueError("entries and proofs do not match")
    except (KeyError, TypeError, ValueError) as e:
        return LogbookExcerpt("failed", f"malformed excerpt: {_str(e)}", checkpoint)
    if size != checkpoint.size:
        return LogbookExcerpt(
            "unverified", f"excerpt for tree size {size}, checkpoint has {checkpoint.size}",
            checkpoint,
        )
    root = bytes.fromhex(checkpoint.root_hex)
    shown: list[ShownEntry] = []
    failures = 0
    for offset, (line, path) in enumerate(zip(lines, proofs, strict=True)):
        index = first + offset
        included = False
        try:
            proof = InclusionProof(
                leaf_index=index, tree_size=size, hashes=[bytes.fromhex(h) for h in path]
            )
            verify_inclusion(proof, leaf_hash(str(line).encode("utf-8")), root, tree_size=size)
            included = True
        except (SecurityError, ValueError, TypeError):
            failures += 1
        shown.append(_entry(index, str(line), included))
    if failures:
        return LogbookExcerpt(
            "failed", f"{failures} of {len(shown)} entries are not in the signed log", checkpoint,
            shown,
        )
    return LogbookExcerpt(
        "verified",
        f"{len(shown)} newest entries included in the checkpoint of size {size} "
        f"signed by {checkpoint.origin}",
        checkpoint, shown,
    )


def _entry(index: int, line: str, included: bool) -> ShownEntry:
    try:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError):
        return ShownEntry(index, "", "(unreadable)", False, 0, line[:500], included)
    counter = raw.get("event_counter", 0)
    return ShownEntry(
        index=index,
        time=_str(raw.get("time", "")),
        type=_str(raw.get("type", "")),
        legally_relevant=raw.get("legally_relevant") is True,
        event_counter=counter if isinstance(counter, int) else 0,
        data=json.dumps(raw.get("data", {}), ensure_ascii=False, sort_keys=True)[:1000],
        included=included,
    )
