"""Fixtures for the portal tests (issue 11): one running testbed for all of them.

- ``portal_testbed``: ``testbed up`` with Mosquitto (the provisioned users and ACL of
  issue 10) and a 20 Hz sensor, shared by every portal test (starting one costs
  seconds); teardown proves no process of it is left.
- ``chromium``: the system Chromium for Playwright; skips without it, fails with
  TESTBED_REQUIRE_BROWSER=1 (CI), like TESTBED_REQUIRE_MOSQUITTO.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from testbed.testing import TestbedRun, require_chromium, require_mosquitto, start_testbed

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SENSOR_RATE_HZ = 20.0


@pytest.fixture
def chromium() -> str:
    """Path of the system Chromium (Debian package ``chromium``), Playwright importable."""
    return require_chromium()


@pytest.fixture(scope="session")
def portal_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestbedRun]:
    require_mosquitto()
    run = start_testbed(
        tmp_path_factory.mktemp("portal") / "testbed", broker="mosquitto", rate_hz=SENSOR_RATE_HZ
    )
    try:
        asyncio.run(run.wait_online(deadline_s=40.0))
        yield run
    finally:
        run.close()

