"""Fixture ``rig`` for the 4.1 stories: a provisioned instrument and a private broker.

The stories run over Mosquitto. ``TESTBED_STORY_BROKERS=mosquitto,embedded`` runs them
over the embedded broker (amqtt) too. That is not the default yet: on a loaded 2-core
CI machine amqtt left a test client's SUBSCRIBE unanswered for 30 s in about one run
in three (at the start of a story, or after a component was killed); see
EMBEDDED_GAPS below for the stories that did not hold over it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.rig import Rig
from testbed.testing import start_embedded, start_mosquitto

BROKERS = [
    b.strip() for b in os.environ.get("TESTBED_STORY_BROKERS", "mosquitto").split(",")
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


# Stories that do not hold reliably yet over the embedded broker (amqtt), each with what
# was seen when it failed. They pass in some runs: not strict, but reported (xfail/xpass)
# on every run so the gap stays in view.
EMBEDDED_GAPS = {
    "test_sensor_loss_is_seen_within_one_and_a_half_heartbeats":
        "over amqtt the killed sensor's loss was not reported within 1.5 heartbeats",
    "test_mother_unit_killed_and_restarted":
        "after the mother unit's SIGKILL amqtt answered no SUBSCRIBE for 30 s in a loaded "
        "CI run (the broker stalled, not the instrument)",
    "test_broker_restarted":
        "after an amqtt restart the story did not complete in some runs (not yet analysed)",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", item.name)
        if item.name.endswith("[embedded]") and name in EMBEDDED_GAPS:
            item.add_marker(pytest.mark.xfail(reason=EMBEDDED_GAPS[name], strict=False))
