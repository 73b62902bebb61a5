"""Fixture ``rig`` for the 4.1 stories: a provisioned instrument and a private broker.

Issue 4 asks for every story over Mosquitto and over the embedded broker, so both run
by default. ``TESTBED_STORY_BROKERS=mosquitto`` (or ``embedded``) runs one of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.rig import Rig
from testbed.testing import start_embedded, start_mosquitto

BROKERS = [
    b.strip() for b in os.environ.get("TESTBED_STORY_BROKERS", "mosquitto,embedded").split(",")
    if b.strip()
]


@pytest.fixture(
    params=[pytest.param(b, marks=pytest.mark.mosquitto) if b == "mosquitto" else b
            for b in BROKERS]
)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """A provisioned instrument directory (2 approved sensors) and a private broker."""
    if request.param == "mosquitto":
        broker = start_mosquitto(tmp_path / "mosquitto")
    elif request.param == "embedded":
        broker = start_embedded(tmp_path / "embedded")
    else:
        pytest.fail(f"TESTBED_STORY_BROKERS: no broker {request.param!r} (mosquitto, embedded)")
    rig = Rig.provisioned(tmp_path / "testbed", broker, sensors=2)
    try:
        yield rig
    finally:
        rig.close()
        rig.broker.close()
