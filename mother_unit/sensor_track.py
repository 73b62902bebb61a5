"""Per-sensor bookkeeping of sequence numbers: completeness (T1) and exactly-once acceptance.

The mother unit accepts each (boot, seq) of a paired sensor at most once: a
sequence number is new if it lies beyond everything seen, or fills a gap that
was detected and not yet given up. Everything else is a duplicate or a replay.
This is a replay window whose "window" is the exact set of missing numbers, so
a retransmission that fills an old gap is accepted while any replay is not.

The sensor is acknowledged only up to the highest sequence number whose
record the store has durably acknowledged, so a sample leaves the sensor's
buffer only once it is stored (L1 via T1).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    NEW = "new"
    GAP_FILLED = "gap_filled"
    DUPLICATE = "duplicate"
    OLD_BOOT = "old_boot"


@dataclass
class SensorTrack:
    sensor_id: str
    boot: int = -1
    expected: int = 0  # next seq beyond everything seen in ``boot``
    missing: dict[int, float] = field(default_factory=dict)  # seq -> when first found missing
    stored: set[int] = field(default_factory=set)  # seqs stored beyond ``stored_upto``
    stored_upto: int = -1  # highest seq of ``boot`` stored with no gap before it
    gaps_unrecoverable: int = 0
    last_seen: float = 0.0

    def check(self, boot: int, seq: int) -> Verdict:
        """Classify (boot, seq) without changing anything."""
        if boot < self.boot:
            return Verdict.OLD_BOOT
        if boot > self.boot or seq >= self.expected:
            return Verdict.NEW
        if seq in self.missing:
            return Verdict.GAP_FILLED
        return Verdict.DUPLICATE

    def accept(self, boot: int, seq: int, now: float | None = None) -> list[int]:
        """Mark (boot, seq) seen; return the sequence numbers newly found missing."""
        now = time.monotonic() if now is None else now
        self.last_seen = now
        if boot > self.boot:
            # A restart of the sensor: what the old boot still owed is given up
            # by the caller (it is logged as a gap); numbering starts again.
            self.boot, self.expected, self.stored_upto = boot, 0, -1
            self.missing.clear()
            self.stored.clear()
        if seq in self.missing:
            del self.missing[seq]
            return []
        new_gap = list(range(self.expected, seq))
        for s in new_gap:
            self.missing[s] = now
        self.expected = max(self.expected, seq + 1)
        return new_gap

    def defer(self, seq: int, now: float | None = None, *, boot: int | None = None) -> None:
        """A new sample we cannot take now (buffers full): ask for it again later.

        ``boot``: the sample's boot. A first sample (or one of a new boot) that is
        deferred starts that boot here as :meth:`accept` would; otherwise the
        retransmission request would name boot -1, which no sensor has (T1).
        """
        now = time.monotonic() if now is None else now
        if boot is not None and boot > self.boot:
            self.boot, self.expected, self.stored_upto = boot, 0, -1
            self.missing.clear()
            self.stored.clear()
        for s in range(self.expected, seq + 1):
            self.missing.setdefault(s, now)
        self.expected = max(self.expected, seq + 1)

    def expire(self, older_than: float) -> list[int]:
        """Give up gaps found before ``older_than``: unrecoverable (the caller logs them)."""
        lost = [s for s, t in self.missing.items() if t < older_than]
        for s in lost:
            del self.missing[s]
            self.mark_stored(s)  # nothing will ever be stored for it: let the watermark pass
        self.gaps_unrecoverable += len(lost)
        return lost

    # -- across restarts of the mother unit (4.2, L1): see mother_unit.records_log --------

    def restore(
        self,
        boot: int,
        stored_upto: int,
        beyond: Iterable[tuple[int, int]] = (),
        now: float | None = None,
    ) -> None:
        """Start from a persisted watermark: everything after it that is not stored
        already (``beyond``: ranges stored after a gap) is asked for again."""
        now = time.monotonic() if now is None else now
        self.boot, self.expected, self.stored_upto = boot, stored_upto + 1, stored_upto
        self.missing.clear()
        self.stored.clear()
        for first, last in beyond:
            self.stored.update(range(first, last + 1))
        if self.stored:
            top = max(self.stored)
            for s in range(self.expected, top):
                if s not in self.stored:
                    self.missing[s] = now
            self.expected = top + 1

    def stored_ranges(self) -> tuple[tuple[int, int], ...]:
        """The seqs stored after the watermark, as (first, last) ranges."""
        out: list[tuple[int, int]] = []
        for s in sorted(self.stored):
            if out and out[-1][1] == s - 1:
                out[-1] = (out[-1][0], s)
            else:
                out.append((s, s))
        return tuple(out)

    def recovered(self, boot: int, seq: int, now: float | None = None) -> None:
        """The store already holds the record of (boot, seq): never make it again."""
        now = time.monotonic() if now is None else now
        if boot < self.boot:
            return
        if boot > self.boot:
            self.restore(boot, -1)
        for s in range(self.expected, seq):
            self.missing.setdefault(s, now)
        self.missing.pop(seq, None)
        self.expected = max(self.expected, seq + 1)
        self.mark_stored(seq)

    def mark_stored(self, seq: int) -> None:
        self.stored.add(seq)
        while self.stored_upto + 1 in self.stored:
            self.stored_upto += 1
            self.stored.discard(self.stored_upto)
