"""The acknowledged point of the records log survives a restart, watermarks included."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mother_unit.records_log import RecordsLog, Watermark
from security_module.checkpoint import NoteSigner


def test_watermarks_with_ranges_stored_after_a_gap_round_trip(tmp_path: Path) -> None:
    signer = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())
    path = tmp_path / "records-log.json"
    log = RecordsLog.open(signer, "welmec-testbed/gm-0001/records", path)
    marks = {
        "sensor-1": Watermark(3, 41, ((45, 47), (50, 50))),
        "sensor-2": Watermark(1, -1),
    }
    log.persist(marks)
    again = RecordsLog.open(signer, "welmec-testbed/gm-0001/records", path)
    assert again.watermarks == marks


def test_a_point_written_before_ranges_existed_still_opens(tmp_path: Path) -> None:
    signer = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())
    path = tmp_path / "records-log.json"
    path.write_text('{"v": 1, "size": 0, "edge": [], "last_leaf_hash": "", "checkpoint": "",'
                    ' "watermarks": {"sensor-1": [2, 9]}}')
    log = RecordsLog.open(signer, "welmec-testbed/gm-0001/records", path)
    assert log.watermarks == {"sensor-1": Watermark(2, 9, ())}
