from __future__ import annotations

import pytest

from remote_sensor.outbox import Outbox, OutboxFull


def test_acknowledge_drops_prefix_only() -> None:
    box = Outbox(10)
    for s in range(5):
        box.add(0, s, b"%d" % s)
    assert box.acknowledge(0, 2) == 3
    assert [k for k, _ in box.items()] == [(0, 3), (0, 4)]
    assert box.get(0, 1) is None
    assert box.get(0, 4) == b"4"


def test_new_boot_ack_clears_old_boot() -> None:
    box = Outbox(10)
    box.add(0, 7, b"a")
    box.add(1, 0, b"b")
    assert box.acknowledge(1, -1) == 1
    assert len(box) == 1


def test_full_outbox_refuses_instead_of_dropping() -> None:
    box = Outbox(2)
    box.add(0, 0, b"a")
    box.add(0, 1, b"b")
    with pytest.raises(OutboxFull):
        box.add(0, 2, b"c")
    assert len(box) == 2


def test_journal_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "outbox.journal"
    box = Outbox(10, journal=path)
    for s in range(4):
        box.add(1, s, b"sealed-%d" % s)
    box.acknowledge(1, 1)
    box.close()  # no flush needed: every change was written before it took effect
    again = Outbox(10, journal=path)
    assert again.recovered == 2
    assert [k for k, _ in again.items()] == [(1, 2), (1, 3)]
    assert again.get(1, 3) == b"sealed-3"


def test_torn_last_line_is_ignored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "outbox.journal"
    box = Outbox(10, journal=path)
    box.add(1, 0, b"a")
    box.close()
    with path.open("ab") as f:
        f.write(b"add 1 1 YWJj 123")  # the process died mid-write: CRC and line cut short
    again = Outbox(10, journal=path)
    assert [k for k, _ in again.items()] == [(1, 0)]
