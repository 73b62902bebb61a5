"""Fixtures for the portal tests (issue 11): one running testbed for all of them.

- ``portal_testbed``: ``testbed up`` with Mosquitto (the provisioned users and ACL of
  issue 10) and a 20 Hz sensor, shared by every portal test (starting one costs
  seconds); teardown proves no process of it is left.
- ``chromium``: the system Chromium for Playwright; skips without it, fails with
  TESTBED_REQUIRE_BROWSER=1 (CI), like TESTBED_REQUIRE_MOSQUITTO.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.testing import TestbedRun, require_mosquitto, start_testbed

REQUIRE_BROWSER_ENV = "TESTBED_REQUIRE_BROWSER"
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


def _browser_required() -> bool:
    return os.environ.get(REQUIRE_BROWSER_ENV, "").strip() in ("1", "true", "yes")


@pytest.fixture
def chromium() -> str:
    """Path of the system Chromium (Debian package ``chromium``), Playwright importable."""
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    problem = None
    if path is None:
        problem = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401, PLC0415 - optional dev dependency
        except ImportError:
            problem = "the Python package playwright is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if _browser_required():
            pytest.fail(f"{problem}, and {REQUIRE_BROWSER_ENV}=1 requires it", pytrace=False)
        pytest.skip(problem)
    assert path is not None
    return path


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

