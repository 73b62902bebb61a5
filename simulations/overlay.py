"""A changed program for one process, without touching the installed source tree.

``changed_copy("mother_unit", into, edit)`` copies the package to ``into/mother_unit``
and applies ``edit`` to the copy; :func:`env_for` puts ``into`` first on
``PYTHONPATH`` for the one process the scenario starts with it. The software
identifier locates packages with ``importlib.util.find_spec``, so the changed
copy is what that process runs *and* what it measures (P2/U2, A_BOOT,
A_SW_REPLACE). The process must not run with the project directory as its
working directory (``python -m`` puts the working directory first on the path):
:meth:`simulations.live.LiveTestbed.spawn` runs it in the testbed directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(package)
    return Path(next(iter(spec.submodule_search_locations)))


def changed_copy(package: str, into: Path, edit: Callable[[Path], None]) -> Path:
    """Copy ``package`` below ``into`` and apply ``edit(copy_dir)``; returns ``into``."""
    target = into / package
    shutil.copytree(package_dir(package), target, ignore=shutil.ignore_patterns("__pycache__"))
    edit(target)
    return into


def append_line(relative: str, line: str) -> Callable[[Path], None]:
    """An edit: append one line to a module of the copy (a one-line code change)."""

    def edit(root: Path) -> None:
        with (root / relative).open("a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")

    return edit


def env_for(overlay: Path) -> dict[str, str]:
    """Environment additions: ``overlay`` first on the module path."""
    rest = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": str(overlay) + (os.pathsep + rest if rest else "")}
