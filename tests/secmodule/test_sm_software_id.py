"""Software identification (P2/U2): reproducible, byte-sensitive, cache-blind."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from security_module.software_id import (
    COMPONENT_PACKAGES,
    SoftwareIdentifier,
    compute_software_id,
    software_id_of_dirs,
)


def _fake_package(root: Path) -> Path:
    pkg = root / "fakepkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""fake"""\n')
    (pkg / "conv.py").write_text("def vb(vm, p, t):\n    return vm * p / t\n")
    (pkg / "sub" / "params.json").write_text('{"pb": 101.325}\n')
    return pkg


def test_exact_algorithm_on_one_file(tmp_path: Path) -> None:
    pkg = tmp_path / "one"
    pkg.mkdir()
    (pkg / "a.py").write_bytes(b"x = 1\n")
    content = b"x = 1\n"
    expected = hashlib.sha256(
        b"one/a.py" + b"\x00" + len(content).to_bytes(8, "big") + content
    ).hexdigest()
    sid = software_id_of_dirs([("one", pkg)])
    assert sid.full == expected
    assert sid.short == expected[:8]
    assert str(sid) == f"sw:{expected[:8]}"


def test_reproducible_and_location_independent(tmp_path: Path) -> None:
    a = _fake_package(tmp_path / "a")
    b = tmp_path / "b" / "fakepkg"
    shutil.copytree(a, b)
    assert software_id_of_dirs([("fakepkg", a)]) == software_id_of_dirs([("fakepkg", a)])
    assert software_id_of_dirs([("fakepkg", a)]) == software_id_of_dirs([("fakepkg", b)])


def test_one_byte_changes_the_identifier(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path)
    before = software_id_of_dirs([("fakepkg", pkg)])
    f = pkg / "conv.py"
    data = bytearray(f.read_bytes())
    data[-3] ^= 0x01
    f.write_bytes(bytes(data))
    assert software_id_of_dirs([("fakepkg", pkg)]) != before


def test_data_files_and_names_count(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path)
    before = software_id_of_dirs([("fakepkg", pkg)])
    (pkg / "sub" / "params.json").write_text('{"pb": 101.326}\n')
    changed = software_id_of_dirs([("fakepkg", pkg)])
    assert changed != before
    (pkg / "conv.py").rename(pkg / "conv2.py")
    assert software_id_of_dirs([("fakepkg", pkg)]) != changed


def test_compiled_caches_are_ignored(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path)
    before = software_id_of_dirs([("fakepkg", pkg)])
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "conv.cpython-311.pyc").write_bytes(b"\x00junk")
    (pkg / "sub" / "__pycache__").mkdir()
    (pkg / "sub" / "__pycache__" / "x.py").write_bytes(b"anything")
    (pkg / "stale.pyc").write_bytes(b"junk")
    (pkg / "opt.pyo").write_bytes(b"junk")
    assert software_id_of_dirs([("fakepkg", pkg)]) == before


def test_installed_components() -> None:
    ids = {kind: compute_software_id(kind) for kind in COMPONENT_PACKAGES}
    assert len(set(ids.values())) == len(ids)  # each component has its own identifier
    assert compute_software_id("mother_unit") == ids["mother_unit"]  # reproducible
    with pytest.raises(ValueError, match="unknown component kind"):
        compute_software_id("portal")


def test_identifier_validation() -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        SoftwareIdentifier("ABC")
