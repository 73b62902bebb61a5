from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.rig import Rig
from testbed.testing import start_mosquitto


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A provisioned instrument directory (2 approved sensors) and a private Mosquitto."""
    broker = start_mosquitto(tmp_path / "mosquitto")
    rig = Rig.provisioned(tmp_path / "testbed", broker, sensors=2)
    try:
        yield rig
    finally:
        rig.close()
        rig.broker.close()
