"""L1 with the acknowledged point persisted off the event loop (docs/performance.md).

A sensor is acknowledged only up to what the acknowledged point ON DISK covers, never
up to what the store has acknowledged but the mother unit has not persisted yet;
batches to the store are bounded in flight so records gather while the store is busy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from mother_unit.records_log import RecordsLog, Watermark
from mother_unit.sensor_link import ack_point
from security_module.checkpoint import NoteSigner

ORIGIN = "welmec-testbed/gm-0001/records"


@pytest.mark.parametrize(
    ("boot", "stored_upto", "persisted", "expected"),
    [
        pytest.param(3, 41, Watermark(3, 41), (3, 41), id="persisted-covers-all"),
        pytest.param(3, 90, Watermark(3, 41), (3, 41), id="stored-beyond-persisted-held-back"),
        pytest.param(3, 10, Watermark(3, 41), (3, 10), id="never-beyond-what-is-stored"),
        pytest.param(4, 7, Watermark(3, 41), (3, 41), id="new-boot-not-on-disk-yet"),
        pytest.param(4, -1, Watermark(4, 5), (4, -1), id="new-boot-nothing-stored"),
        pytest.param(3, 41, None, (0, -1), id="nothing-on-disk-acknowledges-nothing"),
        pytest.param(-1, -1, Watermark(2, 9), (0, -1), id="track-not-started"),
    ],
)
def test_ack_point_never_exceeds_the_persisted_point(
    boot: int, stored_upto: int, persisted: Watermark | None, expected: tuple[int, int]
) -> None:
    assert ack_point(boot, stored_upto, persisted) == expected


@given(
    boot=st.integers(-1, 5),
    upto=st.integers(-1, 100),
    p_boot=st.integers(1, 5),
    p_upto=st.integers(-1, 100),
)
def test_ack_point_is_covered_by_both_the_store_and_the_disk(
    boot: int, upto: int, p_boot: int, p_upto: int
) -> None:
    acked = ack_point(boot, upto, Watermark(p_boot, p_upto))
    assert acked <= (p_boot, p_upto)
    assert acked <= (max(boot, 0), upto)


def test_sensors_follow_the_written_point_not_the_snapshot(tmp_path: Path) -> None:
    """The snapshot is taken on the loop, written elsewhere; only then does it count."""
    signer = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())
    path = tmp_path / "records-log.json"
    log = RecordsLog.open(signer, ORIGIN, path)
    log.persist({"sensor-1": Watermark(1, 4)})
    marks = {"sensor-1": Watermark(1, 9, ((12, 13),))}
    data = log.snapshot(marks)
    assert log.watermarks == {"sensor-1": Watermark(1, 4)}  # not on disk yet
    path.write_bytes(data)  # stands in for the thread's write_atomically
    log.persisted(marks, log.acked_size)
    assert log.watermarks == marks
    assert RecordsLog.open(signer, ORIGIN, path).watermarks == marks


def test_snapshot_is_what_persist_writes(tmp_path: Path) -> None:
    signer = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())
    path = tmp_path / "records-log.json"
    log = RecordsLog.open(signer, ORIGIN, path)
    marks = {"sensor-1": Watermark(2, 3, ((5, 5),))}
    log.persist(marks)
    assert path.read_bytes() == log.snapshot(marks)


def test_the_point_has_moved_until_what_moved_is_written(tmp_path: Path) -> None:
    signer = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())
    path = tmp_path / "records-log.json"
    log = RecordsLog.open(signer, ORIGIN, path)
    marks = {"sensor-1": Watermark(1, 4)}
    assert log.moved(marks)  # watermarks not on disk
    log.persist(marks)
    assert not log.moved(marks)
    assert log.moved({"sensor-1": Watermark(1, 5)})
    reopened = RecordsLog.open(signer, ORIGIN, path)
    assert not reopened.moved(marks)
