"""Batches to the store: bounded in flight, so records gather while the store is busy
and go out at once when it is not (docs/performance.md)."""

from __future__ import annotations

from mother_unit.storage_link import InFlight


def test_in_flight_batches_are_bounded_and_freed_by_acks() -> None:
    f = InFlight(limit=2)
    assert f.has_room
    f.sent(9)
    f.sent(19)
    assert not f.has_room
    assert f.acknowledged(8) == 0  # a partial ack frees nothing
    assert f.acknowledged(9) == 1
    assert f.has_room
    f.sent(25)
    assert f.acknowledged(30) == 2  # one ack may cover several batches
    assert len(f) == 0


def test_a_batch_that_did_not_go_out_is_not_in_flight() -> None:
    f = InFlight(limit=2)
    f.sent(9)
    f.sent(19)
    f.unsent(19)
    assert len(f) == 1
    f.unsent(5)  # not the last one sent: nothing changes
    assert len(f) == 1
    f.clear()  # everything is sent again after the ack timeout
    assert f.has_room
    assert len(f) == 0

