"""Helpers for the remote processing tests (4.4): real processes on a real broker.

An :class:`Instrument` is a provisioned directory plus the component processes
a test starts in it, each ``python -m <package>`` in its own process group,
with its working directory outside the source tree (``python -m`` puts the
working directory first on ``sys.path``; a modified copy of a package given on
PYTHONPATH must win). ``close()`` kills every group it started.

An :class:`Observer` is an ordinary MQTT client: it keeps the newest retained
state, indication and component statuses, records what passes on the
processing topics, and can publish whatever an attacker would.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import importlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from security_module.logbook import LOGBOOK_FILE, LogEntry, scan_logbook
from security_module.provisioning import MOTHER_UNIT
from testbed import children
from testbed.pairing_ceremony import run_ceremony
from testbed.testing import RunningBroker, kill_group
from wire.client import NODELAY
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus, Indication, InstrumentState
from wire.topics import Topics

DOUBLES = Path(__file__).resolve().parent.parent / "doubles"
INSTRUMENT = "gm-0001"
COMPONENT_PACKAGES = (
    "mother_unit",
    "remote_processing",
    "remote_sensor",
    "remote_storage",
    "security_module",
    "wire",
)
CONVERSION_LINE = "    return vm * (p / params.pb_kpa) * (params.tb_k / t) * params.zb_over_z\n"


_IDS_SCRIPT = (
    "import json; from security_module.software_id import LEGALLY_RELEVANT_KINDS as K, "
    "compute_software_id as c; print(json.dumps({k: c(k).full for k in K}))"
)


def _env(*pythonpath: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        [*(str(p) for p in pythonpath), *filter(None, [env.get("PYTHONPATH", "")])]
    )
    return env


def snapshot_code(where: Path) -> Path:
    """A copy of the components' packages, taken once per test session.

    The working tree is shared with other engineers at work: a file saved by
    someone else between provisioning and a component's start would change
    an identifier under a running test. Components run from this copy (first
    on PYTHONPATH); their identifiers are those of the copy.
    """
    root = where / "code"
    for name in COMPONENT_PACKAGES:
        source = Path(str(importlib.import_module(name).__file__)).parent
        shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    # Compiled once here, not by four processes at once at their first start.
    compileall.compile_dir(root, quiet=1)
    return root


def software_ids_as_run(cwd: Path, *pythonpath: Path) -> dict[str, str]:
    """The identifiers a component started by :class:`Instrument` computes for itself.

    Computed in a fresh interpreter outside the source tree: in this pytest
    process ``tests/`` is on ``sys.path`` and its ``security_module`` test
    directory (no ``__init__.py``) is taken by ``find_spec`` as the first
    portion of the package, which gives other identifiers.
    """
    env = _env(*pythonpath)
    cwd.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", _IDS_SCRIPT],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=True,
        timeout=30,
    )
    ids: dict[str, str] = json.loads(out.stdout)
    return ids


def approved_ids(cwd: Path, code: Path) -> dict[str, list[str]]:
    """What a fresh ``provision`` approves: the identifiers of the code that runs."""
    return {k: [v] for k, v in software_ids_as_run(cwd, code).items()}


def modified_processing(where: Path, code: Path) -> tuple[Path, str]:
    """A copy of ``remote_processing`` with one line of its conversion code edited.

    Returns the directory to put first on PYTHONPATH and the copy's software
    identifier. The edit keeps the results (``1.0 *``): only the identifier
    can give it away. The real source tree is never touched.
    """
    root = where / "modified"
    package = root / "remote_processing"
    shutil.copytree(
        code / "remote_processing", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    conversion = package / "conversion.py"
    text = conversion.read_text(encoding="utf-8")
    assert text.count(CONVERSION_LINE) == 1, "the conversion line moved; update the test"
    conversion.write_text(
        text.replace(CONVERSION_LINE, CONVERSION_LINE.replace("return vm", "return 1.0 * vm")),
        encoding="utf-8",
    )
    return root, software_ids_as_run(where, root, code)["remote_processing"]


@dataclass
class Instrument:
    """A provisioned testbed directory and the processes a test runs in it."""

    dir: Path
    broker: RunningBroker
    code: Path  # the snapshot the components run from
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def topics(self) -> Topics:
        return Topics(INSTRUMENT)

    @property
    def workdir(self) -> Path:
        path = self.dir.parent / "cwd"
        path.mkdir(exist_ok=True)
        return path

    def start(
        self,
        name: str,
        module: str,
        *args: str,
        component_id: str | None = None,
        pythonpath: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        assert name not in self.processes, f"{name} already runs"
        env = _env(*filter(None, [pythonpath]), self.code)
        argv = [
            sys.executable,
            "-m",
            module,
            "--dir",
            str(self.dir),
            "--broker",
            self.broker.url,
            "--instrument",
            INSTRUMENT,
            "--component-id",
            component_id or name,
            "--run-id",
            "test",
            *args,
        ]
        log = self.dir.parent / f"{name}-{len(self.processes)}.out"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
                preexec_fn=children.die_with_parent(),  # noqa: PLW1509 - only prctl(2)
            )
        self.processes[name] = process
        return process

    def start_mother_unit(self, *args: str) -> None:
        self.start(
            "mother-unit",
            "mother_unit",
            "--kat-period-s",
            "1",
            "--processing-timeout-s",
            "1",
            *args,
        )

    def stop(self, name: str) -> int:
        return kill_group(self.processes.pop(name))

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def logbook(self) -> list[LogEntry]:
        """The mother unit's logbook entries, read without opening it for writing."""
        path = self.dir / MOTHER_UNIT / LOGBOOK_FILE
        return scan_logbook(path.read_bytes()).entries if path.exists() else []

    def entries(self, type_: str) -> list[LogEntry]:
        return [e for e in self.logbook() if e.type == type_]

    def records(self) -> list[dict[str, Any]]:
        """Every stored record (the leaves in the store's SQLite file), read-only."""
        path = self.dir / "storage" / "records.sqlite"
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT leaf FROM records ORDER BY seq").fetchall()
        finally:
            db.close()
        return [json.loads(bytes(leaf)) for (leaf,) in rows]

    async def pair(self, sensor: str = "sensor-1") -> None:
        result = await run_ceremony(self.dir, self.broker.address, sensor, reason="test")
        assert result.ok, result.message


@dataclass
class Observer:
    """What an ordinary MQTT client sees (and can inject) on the instrument's topics."""

    client: aiomqtt.Client
    topics: Topics
    state: InstrumentState | None = None
    indication: Indication | None = None
    statuses: dict[str, ComponentStatus] = field(default_factory=dict)
    requests: list[bytes] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _read(self) -> None:
        t = self.topics
        async for message in self.client.messages:
            topic = message.topic.value
            payload = bytes(message.payload) if isinstance(message.payload, bytes) else b""
            with contextlib.suppress(RejectedPayload):
                if topic == t.state:
                    self.state = decode(InstrumentState, payload, topic)
                elif topic == t.indication:
                    self.indication = decode(Indication, payload, topic)
                elif topic == t.processing_request:
                    self.requests.append(payload)
                elif topic == t.processing_response:
                    self.responses.append(payload)
                elif payload:
                    status = decode(ComponentStatus, payload, topic)
                    self.statuses[status.component_id] = status
            async with self._changed:
                self._changed.notify_all()

    async def until(
        self, what: str, predicate: Callable[[], object], deadline_s: float = 30.0
    ) -> float:
        """Wait until ``predicate()`` is true; returns the seconds it took."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(deadline_s), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            raise AssertionError(
                f"not within {deadline_s} s: {what}\nlast state: {self.state}"
            ) from None
        return time.monotonic() - started

    async def online(self, component_id: str, pid: int, deadline_s: float = 30.0) -> float:
        def up() -> bool:
            s = self.statuses.get(component_id)
            return s is not None and s.online and s.pid == pid

        return await self.until(f"{component_id} (pid {pid}) online", up, deadline_s)

    def reasons(self) -> list[str]:
        return [] if self.state is None else self.state.reasons

    async def inject(self, topic: str, payload: bytes) -> None:
        await self.client.publish(topic, payload, qos=1)


@contextlib.asynccontextmanager
async def observe(broker: RunningBroker, topics: Topics) -> AsyncIterator[Observer]:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"proc-test-observer-{os.getpid()}",
        socket_options=NODELAY,
        timeout=10,
    ) as client:
        for topic in (
            topics.state,
            topics.indication,
            topics.status_all,
            topics.processing_request,
            topics.processing_response,
        ):
            await client.subscribe(topic, qos=1)
        observer = Observer(client, topics)
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(observer._read(), name="observer")
            try:
                yield observer
            finally:
                reader.cancel()
