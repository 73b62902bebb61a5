"""Fixtures: real brokers and whole testbeds, always cleaned up (helpers: testbed.testing).

- ``mosquitto_broker(config=None)``: factory, a real Mosquitto on a free port;
  ``config`` is a mosquitto.conf text where ``{port}`` marks the port (default:
  the testbed's generated configuration).
- ``embedded_broker``: the embedded broker (``python -m testbed broker``) on a free port.
- ``broker``: parametrized over ``mosquitto`` and ``embedded``.
- ``testbed_run(broker="auto", rate_hz=None, duration_s=None)``: factory,
  ``testbed up`` as a subprocess in ``tmp_path``; teardown asserts that every
  process of the run (supervisor, broker, components) is gone.

Tests marked ``mosquitto`` skip without the binary, or fail when
TESTBED_REQUIRE_MOSQUITTO=1 (CI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.testing import (
    RunningBroker,
    TestbedRun,
    require_mosquitto,
    start_embedded,
    start_mosquitto,
    start_testbed,
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("mosquitto") is not None:
        require_mosquitto()


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[Callable[..., RunningBroker]]:
    started: list[RunningBroker] = []

    def start(config: str | None = None) -> RunningBroker:
        broker = start_mosquitto(tmp_path / "mosquitto", config)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.close()


@pytest.fixture
def embedded_broker(tmp_path: Path) -> Iterator[RunningBroker]:
    broker = start_embedded(tmp_path / "embedded")
    yield broker
    broker.close()


@pytest.fixture(
    params=[pytest.param("mosquitto", marks=pytest.mark.mosquitto), "embedded"],
)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningBroker]:
    if request.param == "mosquitto":
        started = start_mosquitto(tmp_path / "mosquitto")
    else:
        started = start_embedded(tmp_path / "embedded")
    yield started
    started.close()


@pytest.fixture
def testbed_run(tmp_path: Path) -> Iterator[Callable[..., TestbedRun]]:
    runs: list[TestbedRun] = []

    def start(
        broker: str = "auto", rate_hz: float | None = None, duration_s: float | None = None
    ) -> TestbedRun:
        run = start_testbed(
            tmp_path / f"testbed-{len(runs)}", broker=broker, rate_hz=rate_hz, duration_s=duration_s
        )
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()
