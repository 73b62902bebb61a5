"""Test harness: real brokers and whole testbeds as subprocesses, always cleaned up.

Used by ``tests/conftest.py`` (fixtures ``mosquitto_broker``, ``embedded_broker``,
``broker``, ``testbed_run``) and importable by anyone writing scenario tests.
Everything here starts OS processes in their own process group and offers a
``close()`` that SIGTERMs, then SIGKILLs the group, and waits until it is gone.
Waiting for another process is a poll with a deadline (the only event we could
await is the port opening, and that is what we poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from testbed import children
from testbed.board import read_retained
from testbed.broker import (
    LOCALHOST,
    embedded_argv,
    free_port,
    mosquitto_config,
    mosquitto_path,
)
from testbed.broker_config import OBSERVER, tool_address
from testbed.supervisor import STATE_FILE
from wire.messages import ComponentStatus, InstrumentState
from wire.settings import BrokerAddress
from wire.topics import Topics

REQUIRE_MOSQUITTO_ENV = "TESTBED_REQUIRE_MOSQUITTO"
BROKER_START_S = 10.0


def mosquitto_required() -> bool:
    return os.environ.get(REQUIRE_MOSQUITTO_ENV, "").strip() in ("1", "true", "yes")


def require_mosquitto() -> str:
    """The mosquitto binary; skip the test without it (fail if TESTBED_REQUIRE_MOSQUITTO=1)."""
    path = mosquitto_path()
    if path is not None:
        return path
    reason = "mosquitto is not installed (apt-get install mosquitto)"
    if mosquitto_required():
        pytest.fail(f"{reason}, and {REQUIRE_MOSQUITTO_ENV}=1 requires it", pytrace=False)
    pytest.skip(reason)


REQUIRE_BROWSER_ENV = "TESTBED_REQUIRE_BROWSER"


def require_chromium() -> str:
    """Path of the system Chromium (Debian package ``chromium``), Playwright importable;
    skip the test without them (fail if TESTBED_REQUIRE_BROWSER=1, as CI sets)."""
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
        if os.environ.get(REQUIRE_BROWSER_ENV, "").strip() in ("1", "true", "yes"):
            pytest.fail(f"{problem}, and {REQUIRE_BROWSER_ENV}=1 requires it", pytrace=False)
        pytest.skip(problem)
    assert path is not None
    return path


def port_listening(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def popen_in_group(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as leader of a new process group, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Only calls prctl(2): no locks, so safe even with threads.
            preexec_fn=children.die_with_parent(),  # noqa: PLW1509
            env=env,
        )


def kill_group(process: subprocess.Popen[bytes], grace_s: float = 3.0) -> int:
    """SIGTERM the process group, SIGKILL it after ``grace_s``; returns the exit code."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            return process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
    return process.wait(timeout=grace_s)


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    deadline_s: float = BROKER_START_S,
    host: str = LOCALHOST,
) -> None:
    """Poll until something accepts connections on ``port``; fail with the log's tail."""
    end = time.monotonic() + deadline_s
    delay = 0.02
    while not port_listening(port, host):
        if process is not None and process.poll() is not None:
            pytest.fail(
                f"process exited ({children.describe_exit(process.returncode)}) before listening "
                f"on {host}:{port}:\n{children.tail(log)}",
                pytrace=False,
            )
        if time.monotonic() > end:
            pytest.fail(
                f"nothing listening on {host}:{port} after {deadline_s} s:\n{children.tail(log)}"
            )
        time.sleep(delay)  # another process's port: nothing to await
        delay = min(delay * 2, 0.2)


@dataclass
class RunningBroker:
    """A broker process started for a test."""

    kind: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    host: str = LOCALHOST

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(host=self.host, port=self.port)

    @property
    def url(self) -> str:
        return self.address.url()

    def close(self) -> None:
        if self.process.poll() is None:
            kill_group(self.process)
        # The port must be free again for the next test.
        end = time.monotonic() + 5
        while port_listening(self.port, self.host) and time.monotonic() < end:
            time.sleep(0.05)
        assert not port_listening(self.port, self.host), f"port {self.port} still listening"


def start_mosquitto(workdir: Path, config: str | None = None) -> RunningBroker:
    """Mosquitto on a free port; ``config`` may say ``{port}`` where the port goes.

    Without ``config`` it runs the testbed's own generated configuration.
    """
    binary = require_mosquitto()
    port = free_port()
    text = mosquitto_config(port, None) if config is None else config.replace("{port}", str(port))
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / f"mosquitto-{port}.conf"
    conf.write_text(text, encoding="utf-8")
    log = workdir / f"mosquitto-{port}.log"
    process = popen_in_group([binary, "-c", str(conf)], log)
    broker = RunningBroker("mosquitto", port, process, log)
    try:
        wait_for_port(port, process, log)
    except BaseException:
        broker.close()
        raise
    return broker


def start_embedded(workdir: Path) -> RunningBroker:
    """The embedded broker (``python -m testbed broker``) on a free port."""
    port = free_port()
    log = workdir / f"embedded-{port}.log"
    process = popen_in_group(embedded_argv(port), log)
    broker = RunningBroker("embedded", port, process, log)
    try:
        wait_for_port(port, process, log)
    except BaseException:
        broker.close()
        raise
    return broker


# -- a whole testbed ---------------------------------------------------------------------


@dataclass
class TestbedRun:
    """``testbed up`` running as a subprocess in its own directory.

    ``statuses()`` and ``state()`` read what the components retained on the
    broker; ``pids()`` names every process of the run (supervisor, broker we
    started, components) so that teardown can prove they are all gone.
    """

    __test__ = False  # not a test class, despite the name

    dir: Path
    process: subprocess.Popen[bytes]
    output: Path
    instrument: str = "gm-0001"
    _known: dict[str, int] = field(default_factory=dict)

    @property
    def topics(self) -> Topics:
        return Topics(self.instrument)

    def supervisor_state(self) -> dict[str, object] | None:
        """DIR/supervisor.json once the supervisor started everything, else None."""
        try:
            data: dict[str, object] = json.loads((self.dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return data

    @property
    def broker_address(self) -> BrokerAddress:
        """The run's broker as the read-only ``observer`` (a Mosquitto run has ACLs)."""
        return tool_address(self.dir, self.plain_broker_address, OBSERVER)

    @property
    def plain_broker_address(self) -> BrokerAddress:
        """The run's broker without credentials (add a user's with ``tool_address``)."""
        state = self.supervisor_state()
        assert state is not None, "the supervisor has not started the components yet"
        return BrokerAddress.parse(str(state["broker"]))

    def pids(self) -> dict[str, int]:
        """Every process of this run by name: supervisor, broker, components."""
        state = self.supervisor_state()
        if state is not None:
            comps = state.get("components")
            if isinstance(comps, dict):
                self._known.update({str(k): int(v) for k, v in comps.items()})
            if isinstance(state.get("broker_pid"), int):
                self._known["broker"] = int(state["broker_pid"])  # type: ignore[call-overload]
        return {"supervisor": self.process.pid, **self._known}

    def output_text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    async def statuses(self) -> dict[str, ComponentStatus]:
        return (await read_retained(self.broker_address, self.topics))[0]

    async def state(self) -> InstrumentState | None:
        return (await read_retained(self.broker_address, self.topics))[1]

    async def wait_online(self, deadline_s: float = 30.0) -> dict[str, ComponentStatus]:
        """Wait until the supervisor wrote its state file and every component is online."""
        end = time.monotonic() + deadline_s
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"testbed up exited ({children.describe_exit(self.process.returncode)}):\n"
                    + children.tail(self.output, 40),
                    pytrace=False,
                )
            state = self.supervisor_state()
            if state is not None:
                expected = self.pids()
                try:
                    statuses = await self.statuses()
                except aiomqtt.MqttError:
                    # The broker went away (the run is ending): the next turn says why.
                    await asyncio.sleep(0.2)
                    continue
                if all(
                    cid in statuses and statuses[cid].online and statuses[cid].pid == pid
                    for cid, pid in expected.items()
                    if cid not in ("supervisor", "broker")
                ):
                    return statuses
            if time.monotonic() > end:
                pytest.fail(
                    f"testbed not online after {deadline_s} s:\n{children.tail(self.output, 40)}"
                )
            await asyncio.sleep(0.2)

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.process.pid, sig)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def leftovers(self) -> dict[str, int]:
        """Processes (or process groups) of this run that still exist."""
        return {
            name: pid
            for name, pid in self.pids().items()
            if children.alive(pid) or children.group_alive(pid)
        }

    def close(self) -> None:
        """Stop the run if it still runs; then nothing of it may remain."""
        if self.process.poll() is None:
            kill_group(self.process, grace_s=8.0)
        end = time.monotonic() + 5
        while self.leftovers() and time.monotonic() < end:
            time.sleep(0.05)
        left = self.leftovers()
        for pid in left.values():  # do not leak them into the next test, then fail
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        assert not left, f"processes left behind: {left}"


def start_testbed(
    dir: Path,
    broker: str = "auto",
    rate_hz: float | None = None,
    duration_s: float | None = None,
    extra_args: Sequence[str] = (),
) -> TestbedRun:
    """``python -m testbed up --dir DIR --broker BROKER`` as a subprocess."""
    argv = [sys.executable, "-m", "testbed", "up", "--dir", str(dir), "--broker", broker]
    if rate_hz is not None:
        argv += ["--rate", str(rate_hz)]
    if duration_s is not None:
        argv += ["--duration", str(duration_s)]
    output = dir.parent / f"{dir.name}-supervisor.out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = popen_in_group([*argv, *extra_args], output, env=env)
    return TestbedRun(dir=dir, process=process, output=output)
