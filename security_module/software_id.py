"""Software identification (WELMEC 7.2 P2/U2, MID Annex I 8.3; WELMEC 7.3 §3.2).

Algorithm (reproducible, documented in docs/security_module.md):

1. A component kind maps to its legally relevant packages (``COMPONENT_PACKAGES``).
   Each package directory is located with ``importlib.util.find_spec`` - the code is
   never imported, so identifying software cannot execute it.
2. Every regular file below each package directory is taken, except directories
   named ``__pycache__`` and files ending in ``.pyc`` / ``.pyo`` (compiled caches).
   Its name is the POSIX path relative to the package's parent, i.e. prefixed with
   the package name: ``security_module/envelope.py``. Symlinked directories are not
   followed.
3. Files of all packages are sorted together by the UTF-8 bytes of that name.
4. ``SHA-256( for each file: name ‖ 0x00 ‖ len(content) as 8-byte big-endian ‖ content )``.

The full identifier is the hex digest; the short form is its first 8 hex characters,
displayed as ``sw:1a2b3c4d``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from security_module.errors import SoftwareIdMismatch

if TYPE_CHECKING:
    from security_module.type_approval import TypeApproval

__all__ = [
    "COMPONENT_PACKAGES",
    "LEGALLY_RELEVANT_KINDS",
    "SoftwareIdentifier",
    "check_software_id",
    "compute_software_id",
    "locate_package",
    "software_id_of_dirs",
]

COMPONENT_PACKAGES: dict[str, tuple[str, ...]] = {
    "mother_unit": ("mother_unit", "security_module", "wire"),
    "remote_processing": ("remote_processing", "security_module", "wire"),
    "remote_sensor": ("remote_sensor", "security_module", "wire"),
    # 4.2: storage holds no legally relevant software; it reports an id for display only.
    "remote_storage": ("remote_storage", "wire"),
}
# The kinds whose identifier the type approval lists and the mother unit checks.
LEGALLY_RELEVANT_KINDS: tuple[str, ...] = ("mother_unit", "remote_processing", "remote_sensor")

_EXCLUDED_DIRS = frozenset({"__pycache__"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True, order=True)
class SoftwareIdentifier:
    """A software identifier: ``full`` is 64 hex chars, ``short`` the first 8."""

    full: str

    def __post_init__(self) -> None:
        if len(self.full) != 64 or any(c not in "0123456789abcdef" for c in self.full):
            raise ValueError("a software identifier is 64 lowercase hex characters")

    @property
    def short(self) -> str:
        return self.full[:8]

    @property
    def display(self) -> str:
        return f"sw:{self.short}"

    def __str__(self) -> str:
        return self.display


def locate_package(name: str) -> Path:
    """The directory of a top-level package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} not found (is the project installed?)")
    if spec.origin is None:
        # A namespace package: some directory of the same name (a test folder, say) shadows
        # the real package on sys.path. Identifying it would silently yield a wrong id.
        places = ", ".join(spec.submodule_search_locations)
        raise ModuleNotFoundError(
            f"package {name!r} resolves to a namespace directory ({places}), not the installed "
            "package: a directory of that name shadows it on sys.path"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _package_files(prefix: str, root: Path) -> Iterable[tuple[bytes, Path]]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in _EXCLUDED_DIRS]
        rel_dir = Path(dirpath).relative_to(root)
        for fname in filenames:
            if fname.endswith(_EXCLUDED_SUFFIXES):
                continue
            full = Path(dirpath) / fname
            if not full.is_file():
                continue
            name = (Path(prefix) / rel_dir / fname).as_posix()
            yield name.encode("utf-8"), full


def software_id_of_dirs(packages: Sequence[tuple[str, Path]]) -> SoftwareIdentifier:
    """The identifier over explicit ``(package name, directory)`` pairs (testable)."""
    files: list[tuple[bytes, Path]] = []
    for prefix, root in packages:
        if not root.is_dir():
            raise FileNotFoundError(f"package directory {root} does not exist")
        files.extend(_package_files(prefix, root))
    files.sort(key=lambda item: item[0])
    h = hashlib.sha256()
    for name, path in files:
        content = path.read_bytes()
        h.update(name)
        h.update(b"\x00")
        h.update(len(content).to_bytes(8, "big"))
        h.update(content)
    return SoftwareIdentifier(h.hexdigest())


def compute_software_id(component_kind: str) -> SoftwareIdentifier:
    """The identifier of the installed code of ``component_kind`` (P2/U2)."""
    try:
        names = COMPONENT_PACKAGES[component_kind]
    except KeyError as e:
        raise ValueError(f"unknown component kind {component_kind!r}") from e
    return software_id_of_dirs([(n, locate_package(n)) for n in names])


def check_software_id(
    approval: TypeApproval, kind: str, sid: SoftwareIdentifier | str
) -> None:
    """Raise :class:`SoftwareIdMismatch` unless ``sid`` is approved for ``kind``.

    P2/U2: a mismatch is evidence of an intervention (logbook, event counter, INHIBITED).
    """
    got = sid.full if isinstance(sid, SoftwareIdentifier) else sid
    expected = list(approval.software_ids.get(kind, []))
    if got not in expected:
        raise SoftwareIdMismatch(
            f"software identifier of {kind} is not approved",
            kind=kind,
            expected=expected,
            got=got,
        )
