"""The provisioned material a testbed directory must hold before components start.

One function decides "is DIR ready to run?", so that ``up``, ``demo`` and the
test fixtures agree. Provisioning itself (keys, certificates, type approval)
belongs to :mod:`security_module.provisioning`; this module only calls it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# Written last by provisioning: its presence means the directory is complete.
MANIFEST = "manifest.json"


def ensure_provisioned(dir: Path, sensors: int = 1) -> None:
    """Make ``dir`` a provisioned testbed directory for ``sensors`` sensors, unless it is one."""
    dir.mkdir(parents=True, exist_ok=True)
    if (dir / MANIFEST).exists():
        return  # never re-provision: that would discard pairings and the logbook
    try:
        provisioning = importlib.import_module("security_module.provisioning")
    except ModuleNotFoundError as e:
        if e.name != "security_module.provisioning":
            raise
        return  # provisioning not available: components run unprovisioned
    provisioning.provision(dir, sensors=sensors)
