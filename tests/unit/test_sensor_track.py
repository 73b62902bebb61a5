"""Completeness (T1) and exactly-once acceptance of sensor sequence numbers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mother_unit.sensor_track import SensorTrack, Verdict


def feed(track: SensorTrack, seqs: list[int], boot: int = 0) -> list[Verdict]:
    out = []
    for s in seqs:
        v = track.check(boot, s)
        out.append(v)
        if v in (Verdict.NEW, Verdict.GAP_FILLED):
            track.accept(boot, s, now=0.0)
    return out


def test_in_order_stream_is_accepted_once() -> None:
    t = SensorTrack("s")
    assert feed(t, [0, 1, 2]) == [Verdict.NEW] * 3
    assert feed(t, [0, 1, 2]) == [Verdict.DUPLICATE] * 3


def test_gap_is_detected_and_can_be_filled_exactly_once() -> None:
    t = SensorTrack("s")
    feed(t, [0, 1])
    assert t.accept(0, 5, now=0.0) == [2, 3, 4]
    assert feed(t, [3, 3, 2, 4, 2]) == [
        Verdict.GAP_FILLED,
        Verdict.DUPLICATE,
        Verdict.GAP_FILLED,
        Verdict.GAP_FILLED,
        Verdict.DUPLICATE,
    ]
    assert t.missing == {}


def test_unfilled_gap_expires_and_is_counted() -> None:
    t = SensorTrack("s")
    t.accept(0, 0, now=0.0)
    t.accept(0, 3, now=1.0)
    assert t.expire(older_than=2.0) == [1, 2]
    assert t.gaps_unrecoverable == 2
    assert t.check(0, 1) is Verdict.DUPLICATE  # given up: a late copy is not taken any more


def test_older_boot_is_rejected_and_newer_boot_restarts_numbering() -> None:
    t = SensorTrack("s")
    feed(t, [0, 1], boot=2)
    assert t.check(1, 5) is Verdict.OLD_BOOT
    assert t.check(3, 0) is Verdict.NEW
    t.accept(3, 0, now=0.0)
    assert t.check(2, 2) is Verdict.OLD_BOOT


def test_watermark_advances_only_over_stored_or_expired() -> None:
    t = SensorTrack("s")
    for s in range(4):
        t.accept(0, s, now=0.0)
    t.mark_stored(0)
    t.mark_stored(2)
    assert t.stored_upto == 0
    t.mark_stored(1)
    assert t.stored_upto == 2


def test_first_sample_deferred_starts_its_boot() -> None:
    # Found by scenario similar-sensor-swapped: samples deferred before the store was
    # synced made the mother unit ask for retransmission of boot -1 and crash.
    t = SensorTrack("s")
    t.defer(3, now=0.0, boot=2)
    assert t.boot == 2
    assert sorted(t.missing) == [0, 1, 2, 3]
    assert t.check(2, 3) is Verdict.GAP_FILLED


def test_deferred_sample_is_asked_for_again() -> None:
    t = SensorTrack("s")
    t.accept(0, 0, now=0.0)
    t.defer(1, now=0.0)
    assert t.check(0, 1) is Verdict.GAP_FILLED


def test_restart_after_a_gap_never_makes_a_stored_sample_again() -> None:
    """Samples stored after a gap survive a restart of the mother unit: when the gap is
    filled, only the gap becomes new records, never what was stored beyond it (L1)."""
    t = SensorTrack("s")
    feed(t, [0, 1, 2])
    assert t.accept(0, 6, now=0.0) == [3, 4, 5]  # 3..5 missing, 6 accepted
    for s in (0, 1, 2, 6):
        t.mark_stored(s)
    assert (t.stored_upto, t.stored_ranges()) == (2, ((6, 6),))

    after = SensorTrack("s")
    after.restore(0, t.stored_upto, t.stored_ranges(), now=0.0)
    # The sensor retransmits everything it still holds: 3..7.
    assert feed(after, [3, 4, 5, 6, 7]) == [
        Verdict.GAP_FILLED,
        Verdict.GAP_FILLED,
        Verdict.GAP_FILLED,
        Verdict.DUPLICATE,
        Verdict.NEW,
    ]


@given(
    order=st.permutations(list(range(12))),
    stored_mask=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_restored_track_accepts_exactly_the_samples_not_stored(
    order: list[int], stored_mask: list[bool]
) -> None:
    """Whatever the arrival order and whichever records were stored at the kill, the
    restored track takes each not-stored sample exactly once and no stored one."""
    t = SensorTrack("s")
    feed(t, order)
    stored = {s for s, yes in zip(range(12), stored_mask, strict=True) if yes}
    for s in sorted(stored):
        t.mark_stored(s)
    after = SensorTrack("s")
    after.restore(0, t.stored_upto, t.stored_ranges(), now=0.0)
    taken = [s for s, v in zip(range(12), feed(after, list(range(12))), strict=True)
             if v in (Verdict.NEW, Verdict.GAP_FILLED)]
    assert taken == sorted(set(range(12)) - stored)
