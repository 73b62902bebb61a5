"""Independent verification of a logbook file (for ``testbed logbook verify`` and L6-style audits).

Recomputes the RFC 9162 tree from the file bytes, checks every entry (canonical form,
index, hash chain, event counter), verifies every signed checkpoint, checks that the
newest checkpoint's root matches the file, and that every earlier checkpoint is
consistent with it (RFC 9162 §2.1.4 proofs generated from the recomputed tree).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from security_module.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from security_module.errors import (
    CheckpointMalformed,
    InvalidProof,
    SignatureInvalid,
    StateFileError,
)
from security_module.logbook import (
    CHECKPOINTS_FILE,
    LOGBOOK_FILE,
    read_checkpoint_notes,
    scan_logbook,
)
from security_module.merkle import verify_consistency

__all__ = ["LogbookVerification", "resolve_logbook_path", "verify_logbook"]


@dataclass
class LogbookVerification:
    """Rich result: ``ok`` plus what was checked and the first bad entry, if any."""

    ok: bool
    path: str
    entries: int
    event_counter: int
    checkpoints: int
    newest_checkpoint_size: int | None
    unsigned_entries: int
    first_bad_index: int | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    torn_tail: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_logbook_path(path: Path | str) -> Path:
    """Accept the logbook file, its directory, or a provision dir (→ mother-unit/)."""
    p = Path(path)
    if p.is_dir():
        if (p / "mother-unit").is_dir():
            p = p / "mother-unit"
        return p / LOGBOOK_FILE
    return p


def verify_logbook(  # noqa: PLR0912, PLR0915 - one pass over all checks, in order
    path: Path | str,
    verifier: NoteVerifier | tuple[str, Ed25519PublicKey],
    *,
    origin: str | None = None,
) -> LogbookVerification:
    """Verify a logbook; never raises for bad content (it is reported in the result)."""
    if isinstance(verifier, tuple):
        verifier = NoteVerifier(*verifier)
    lb_path = resolve_logbook_path(path)
    data = lb_path.read_bytes() if lb_path.exists() else b""
    scan = scan_logbook(data)
    n = scan.tree.size
    counter = scan.entries[-1].event_counter if scan.entries else 0
    problems = list(scan.problems)
    warnings: list[str] = []
    first_bad = scan.first_bad_index

    def bad(index: int, problem: str) -> None:
        nonlocal first_bad
        first_bad = index if first_bad is None else min(first_bad, index)
        problems.append(problem)

    if not lb_path.exists():
        problems.append(f"{lb_path} does not exist")
    if scan.torn is not None:
        warnings.append("torn last line (crash during a write); it is recovered on next open")

    try:
        notes = read_checkpoint_notes(lb_path.parent / CHECKPOINTS_FILE)
    except StateFileError as e:
        notes = []
        bad(0, str(e))
    checkpoints: list[Checkpoint] = []
    checkpoint_errors = 0
    for k, note in enumerate(notes):
        try:
            checkpoints.append(open_checkpoint(note, verifier, origin=origin))
        except (SignatureInvalid, CheckpointMalformed) as e:
            # A forged or damaged checkpoint is a failure, but not an entry's fault.
            problems.append(f"checkpoint #{k}: {e}")
            checkpoint_errors += 1

    newest = max(checkpoints, key=lambda c: c.size, default=None)
    good_sizes = [0]
    for cp in sorted(checkpoints, key=lambda c: c.size):
        if cp.size > n:
            bad(n, f"checkpoint of size {cp.size} covers entries {n}..{cp.size - 1} that are "
                   "missing from the file (deleted or truncated)")
            continue
        if scan.tree.root(cp.size) != cp.root_hash:
            g = max(good_sizes)
            # With an intact hash chain, the newest entry under the checkpoint is the one
            # that conflicts with the signed root; the proven prefix ends at g.
            sbad = scan.first_bad_index
            culprit = sbad if sbad is not None and sbad < cp.size else cp.size - 1
            bad(culprit, f"entries {g}..{cp.size - 1} do not match the signed checkpoint of "
                         f"size {cp.size} (first suspect: entry {culprit})")
        else:
            good_sizes.append(cp.size)

    if newest is not None and newest.size in good_sizes:
        # The file reproduces the newest signed root, so proofs built from it are honest:
        # check every earlier checkpoint is consistent with the newest (RFC 9162 §2.1.4),
        # i.e. the log was never forked or rewritten between checkpoints.
        for cp in checkpoints:
            try:
                proof = scan.tree.consistency_proof(cp.size, newest.size)
                verify_consistency(proof, cp.root_hash, newest.root_hash,
                                   first_size=cp.size, second_size=newest.size)
            except InvalidProof as e:
                checkpoint_errors += 1
                problems.append(f"checkpoint of size {cp.size} is not consistent with the "
                                f"newest (size {newest.size}): {e.message}")
    elif newest is not None:
        warnings.append("consistency between checkpoints not checked: the file does not "
                        "reproduce the newest signed root")
    else:
        warnings.append("no signed checkpoint yet: entries are checked by the hash chain only")

    return LogbookVerification(
        ok=first_bad is None and checkpoint_errors == 0 and lb_path.exists(),
        path=str(lb_path),
        entries=n,
        event_counter=counter,
        checkpoints=len(checkpoints),
        newest_checkpoint_size=newest.size if newest else None,
        unsigned_entries=n - (newest.size if newest else 0),
        first_bad_index=first_bad,
        problems=problems,
        warnings=warnings,
        torn_tail=scan.torn is not None,
    )
