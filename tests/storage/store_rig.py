"""Helpers: a whole instrument as real processes on a real Mosquitto, for the storage stories.

``rig`` provisions a directory, starts Mosquitto (own config, free port) and the four
components each in its own process group, pairs sensor-1, and watches the store's
acknowledgements with ``mosquitto_sub``. Teardown kills every process group it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testbed import children
from testbed.testing import RunningBroker, kill_group, popen_in_group

CONFIG = "listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
MODULES = {
    "storage": "remote_storage",
    "processing": "remote_processing",
    "mother-unit": "mother_unit",
    "sensor-1": "remote_sensor",
}


# The rigs of the running test, so that a timeout can say what their processes were doing.
LIVE: list[Rig] = []


def wait_until(what: str, check: Callable[[], bool], deadline_s: float) -> None:
    """Poll ``check`` until true; on timeout fail with a diagnosis of every live rig."""
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline_s} s waiting for: {what}\n"
                        + "\n".join(r.diagnose() for r in LIVE))
        time.sleep(0.1)  # other processes: nothing to await


def py_spy() -> str | None:
    """The py-spy binary (a dev dependency, next to this interpreter), if installed."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def process_state(pid: int) -> str:
    """``S (sleeping)``, ``Z (zombie)``...: the kernel's word for what ``pid`` does."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def stacks(pid: int) -> str:
    """Python stacks of every thread of ``pid`` (py-spy dump; needs ptrace rights)."""
    binary = py_spy()
    if binary is None:
        return "    (no py-spy installed)"
    try:
        out = subprocess.run([binary, "dump", "--pid", str(pid)], capture_output=True,
                             text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "    (py-spy dump timed out)"
    text = (out.stdout + out.stderr).rstrip()
    return "\n".join("    " + line for line in text.splitlines())


@dataclass
class Rig:
    dir: Path
    broker: RunningBroker
    rate_hz: float = 100.0
    mu_args: tuple[str, ...] = ()
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    acks: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.broker.url

    @property
    def db(self) -> Path:
        return self.dir / "storage" / "records.sqlite"

    def start(self, name: str) -> None:
        argv = [sys.executable, "-m", MODULES[name], "--dir", str(self.dir), "--broker", self.url,
                "--heartbeat-s", "0.5"]
        if name == "sensor-1":
            argv += ["--rate-hz", str(self.rate_hz)]
        if name == "mother-unit":
            argv += list(self.mu_args)
        self.procs[name] = popen_in_group(argv, self.dir / "out" / f"{name}.log")

    def kill(self, name: str) -> None:
        """SIGKILL, no warning: the process gets no chance to finish anything."""
        p = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)

    def stop(self, name: str) -> None:
        kill_group(self.procs[name], grace_s=5.0)

    def up(self) -> None:
        ack_log = (self.dir / "out" / "acks.log")
        ack_log.parent.mkdir(parents=True, exist_ok=True)
        mosquitto_sub = shutil.which("mosquitto_sub")
        assert mosquitto_sub is not None, "needs mosquitto_sub (apt-get install mosquitto-clients)"
        self.acks = popen_in_group(
            [mosquitto_sub, "-p", str(self.broker.port), "-q", "1", "-t",
             "mi/gm-0001/storage/ack"], ack_log)
        LIVE.append(self)
        for name in MODULES:
            self.start(name)
        pair = subprocess.run(
            [sys.executable, "-m", "testbed", "pair", "--sensor", "sensor-1", "--dir",
             str(self.dir), "--broker", self.url],
            capture_output=True, text=True, timeout=40, check=False,
        )
        assert pair.returncode == 0, pair.stdout + pair.stderr

    def acked_upto(self) -> int:
        """The highest record seq the store has acknowledged (seen on the broker)."""
        best = -1
        path = self.dir / "out" / "acks.log"
        for line in path.read_text(errors="replace").splitlines():
            try:
                best = max(best, int(json.loads(line)["stored_upto"]))
            except (ValueError, KeyError, TypeError):
                continue
        return best

    def retained(self, topic: str) -> object:
        """The JSON retained on ``topic`` (None if there is none within 3 s, or not JSON)."""
        out = subprocess.run(
            ["mosquitto_sub", "-p", str(self.broker.port), "-t", topic, "-C", "1", "-W", "3"],
            capture_output=True, text=True, timeout=10, check=False)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return None

    def state(self) -> dict[str, object]:
        data = self.retained("mi/gm-0001/mother/state")
        return data if isinstance(data, dict) else {}

    def counters(self, name: str) -> dict[str, int]:
        """The counters of the running process of ``name``, from the status it retains on
        the broker; {} while that process has not announced itself (or is dead): a status
        left by an earlier process of the component never counts."""
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return {}
        status = self.retained(f"mi/gm-0001/status/{name}")
        if not isinstance(status, dict) or status.get("pid") != p.pid:
            return {}
        try:
            return {str(k): int(v) for k, v in status["counters"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return {}

    def mu_acked_size(self) -> int:
        try:
            return int(json.loads((self.dir / "mother-unit" / "records-log.json")
                                  .read_text())["size"])
        except (OSError, ValueError, KeyError):
            return 0

    def drain(self, deadline_s: float = 30.0) -> None:
        """Stop the sensor, wait until the store acknowledged everything the MU made."""
        self.stop("sensor-1")

        def settled() -> bool:
            # The running mother unit's own counters: a state retained by a killed one
            # must not pass for it.
            counters = self.counters("mother-unit")
            made = counters.get("records_created", 0)
            return made > 0 and counters.get("records_acked", 0) == made \
                and self.mu_acked_size() >= self.acked_upto() + 1

        wait_until("the store acknowledged every record made", settled, deadline_s)

    def rows(self) -> list[tuple[int, bytes]]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            return [(int(s), bytes(leaf)) for s, leaf in
                    db.execute("SELECT seq, leaf FROM records ORDER BY seq")]

    def diagnose(self) -> str:
        """Each process of the rig: alive or how it ended, its stacks, its output's tail;
        and the last status every component retained on the broker."""
        parts = [f"== rig {self.dir}"]
        broker = self.broker.process
        parts.append(f"-- broker pid {broker.pid}: "
                     + ("alive" if broker.poll() is None
                        else children.describe_exit(broker.returncode)))
        for name, p in self.procs.items():
            if p.poll() is None:
                parts.append(f"-- {name} pid {p.pid}: alive, {process_state(p.pid)}")
                parts.append(stacks(p.pid))
            else:
                parts.append(f"-- {name} pid {p.pid}: {children.describe_exit(p.returncode)}")
            parts.append(children.tail(self.dir / "out" / f"{name}.log", 8))
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            status = subprocess.run(
                ["mosquitto_sub", "-p", str(self.broker.port), "-t", "mi/gm-0001/status/+",
                 "-v", "--retained-only", "-W", "2"],
                capture_output=True, text=True, timeout=10, check=False)
            parts.append("-- retained status:\n" + status.stdout.rstrip())
        return "\n".join(parts)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            LIVE.remove(self)
        for p in [*self.procs.values(), *([self.acks] if self.acks else [])]:
            if p.poll() is None:
                kill_group(p, grace_s=3.0)
