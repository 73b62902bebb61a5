"""``testbed up``: starts everything, stops everything, names a component that dies.

Run as a user runs it (``python -m testbed up`` in a subprocess, signals from
outside); the fixture's teardown proves that no process of the run remains.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from testbed import children
from testbed.supervisor import (
    ComponentDied,
    ComponentsNotOnline,
    ComponentSpec,
    UpConfig,
    default_components,
    run_up,
)
from testbed.testing import TestbedRun, port_listening

BROKERS = [pytest.param("mosquitto", marks=pytest.mark.mosquitto), "embedded"]
COMPONENTS = {"storage", "processing", "mother-unit", "sensor-1", "portal"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("broker", BROKERS)
async def test_sigterm_stops_everything_and_leaves_no_process_or_port(
    testbed_run: Callable[..., TestbedRun], broker: str
) -> None:
    run = testbed_run(broker=broker, duration_s=20)
    statuses = await run.wait_online()
    assert set(statuses) == COMPONENTS
    pids = run.pids()
    assert set(pids) == {"supervisor", "broker", *COMPONENTS}
    broker_port = run.broker_address.port

    started = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout_s=8) == 0, run.output_text()
    assert time.monotonic() - started < 5.5  # promise: everything stopped within 5 s

    for name, pid in pids.items():
        assert not children.alive(pid), f"{name} (pid {pid}) still runs"
        assert not children.group_alive(pid), f"process group of {name} still has members"
    assert not port_listening(broker_port)
    assert not (run.dir / "supervisor.json").exists()
    output = run.output_text()
    assert "stopped by signal" in output


@pytest.mark.timeout(60)
@pytest.mark.parametrize("broker", BROKERS)
async def test_a_killed_component_is_named_and_the_run_fails(
    testbed_run: Callable[..., TestbedRun], broker: str
) -> None:
    run = testbed_run(broker=broker)
    await run.wait_online()
    victim = run.pids()["sensor-1"]
    os.kill(victim, signal.SIGKILL)
    assert run.wait(timeout_s=10) == 3
    output = run.output_text()
    assert f"component sensor-1 (pid {victim}) died unexpectedly: killed by SIGKILL" in output
    # teardown (run.close) asserts the other components and the broker are gone


@pytest.mark.timeout(60)
async def test_status_command_shows_the_running_components(
    testbed_run: Callable[..., TestbedRun],
) -> None:
    run = testbed_run(broker="embedded")
    await run.wait_online()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "testbed", "status", "--dir", str(run.dir), "--json"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown["components"]) == COMPONENTS
    assert all(c["online"] for c in shown["components"].values())


@pytest.mark.timeout(30)
async def test_a_component_that_never_comes_online_is_named(tmp_path: Path) -> None:
    silent = ComponentSpec("tests.harness.silent_component", "silent-1")
    cfg = UpConfig(
        dir=tmp_path, broker="embedded", components=[silent], online_deadline_s=2, grace_s=2
    )
    with pytest.raises(ComponentsNotOnline, match="not online after 2 s: silent-1") as info:
        await run_up(cfg)
    assert info.value.missing == ["silent-1"]


@pytest.mark.timeout(30)
async def test_a_component_that_exits_at_start_is_named_with_its_output(tmp_path: Path) -> None:
    broken = ComponentSpec("remote_sensor", "sensor-1", ("--no-such-flag",))
    cfg = UpConfig(dir=tmp_path, broker="embedded", components=[broken], grace_s=2)
    with pytest.raises(
        ComponentDied, match=r"component sensor-1 \(pid \d+\) died unexpectedly: exit code"
    ) as info:
        await run_up(cfg)
    assert "no-such-flag" in info.value.console_tail


def test_default_components_start_consumers_before_the_sensor() -> None:
    specs = default_components(rate_hz=5)
    ids = [s.component_id for s in specs]
    # The portal (4.3, legally non-relevant) only watches; it may come last.
    assert ids == ["storage", "processing", "mother-unit", "sensor-1", "portal"]
    assert specs[3].extra_args == ("--rate-hz", "5")
