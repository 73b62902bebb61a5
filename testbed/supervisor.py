"""The supervisor behind ``testbed up``: broker, one OS process per component, a clean stop.

Lifecycle of one run::

    ensure_provisioned(DIR) -> broker up -> subscribe status/+ -> start components
    -> all announced online (retained ComponentStatus, our pid) -> run until
    SIGTERM/Ctrl-C or --duration -> SIGTERM each process group, SIGKILL after a
    grace -> final statuses collected -> broker stopped -> RunSummary

Everything runs in one TaskGroup: a watcher per child (a child that exits
while we are not stopping it ends the run with :class:`ComponentDied`), the
status listener, the view, and the lifecycle task itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import structlog

from security_module.pairing_store import PairingStore
from security_module.provisioning import MOTHER_UNIT
from testbed import children
from testbed.board import Row, StatusBoard
from testbed.broker import LOCALHOST, BrokerInfo, free_port, running_broker
from testbed.broker_config import SUPERVISOR, tool_address
from testbed.material import ensure_provisioned
from testbed.pairing_ceremony import run_ceremony
from testbed.panel import NoView, StatusView
from wire.client import NODELAY
from wire.messages import ComponentStatus, InstrumentState
from wire.settings import BrokerAddress
from wire.topics import Topics

log = structlog.get_logger()

ONLINE_DEADLINE_S = 20.0
STOP_GRACE_S = 3.0  # SIGTERM -> SIGKILL; components promise a clean exit within ~2 s
FINAL_STATUS_WAIT_S = 1.0
STATE_FILE = "supervisor.json"

EXIT_COMPONENT_DIED = 3
EXIT_STARTUP_FAILED = 4


@dataclass(frozen=True)
class ComponentSpec:
    """How to start one component: ``python -m <package> --component-id <id> ...``."""

    package: str
    component_id: str
    extra_args: tuple[str, ...] = ()


def default_components(rate_hz: float | None = None, sensors: int = 1) -> list[ComponentSpec]:
    """The default instrument; consumers first, so that the first samples find them."""
    rate = ("--rate-hz", str(rate_hz)) if rate_hz is not None else ()
    return [
        ComponentSpec("remote_storage", "storage"),
        ComponentSpec("remote_processing", "processing"),
        ComponentSpec("mother_unit", "mother-unit"),
        *(ComponentSpec("remote_sensor", f"sensor-{n}", rate) for n in range(1, sensors + 1)),
        # WELMEC 7.3 §4.3: the remote portal (legally non-relevant), on a free loopback port.
        ComponentSpec("remote_portal", "portal", ("--http-port", str(free_port()))),
    ]


def portal_url(specs: Sequence[ComponentSpec]) -> str | None:
    """The web address of the run's portal, if it has one (issue 11)."""
    for spec in specs:
        if spec.package == "remote_portal" and "--http-port" in spec.extra_args:
            port = spec.extra_args[spec.extra_args.index("--http-port") + 1]
            return f"http://{LOCALHOST}:{port}/"
    return None


@dataclass(frozen=True)
class UpConfig:
    dir: Path
    instrument: str = "gm-0001"
    broker: str = "auto"
    duration_s: float | None = None
    rate_hz: float | None = None
    run_id: str = ""
    components: Sequence[ComponentSpec] | None = None
    online_deadline_s: float = ONLINE_DEADLINE_S
    grace_s: float = STOP_GRACE_S


@dataclass(frozen=True)
class RunSummary:
    """What a finished run reports (``testbed demo`` prints it)."""

    run_id: str
    dir: Path
    instrument: str
    broker: BrokerInfo
    statuses: dict[str, ComponentStatus]
    state: InstrumentState | None
    elapsed_s: float
    stopped_by: str  # "duration" or "signal"
    rows: list[Row]  # the status panel's last lines
    portal_url: str | None = None  # the remote portal's web address (issue 11)


class SupervisorError(Exception):
    exit_code = EXIT_STARTUP_FAILED


class ComponentDied(SupervisorError):
    """A component process exited while nobody asked it to."""

    exit_code = EXIT_COMPONENT_DIED

    def __init__(self, component_id: str, pid: int, returncode: int, console_tail: str) -> None:
        how = children.describe_exit(returncode)
        super().__init__(
            f"component {component_id} (pid {pid}) died unexpectedly: {how}"
            + (f"\nlast lines of its console log:\n{console_tail}" if console_tail else "")
        )
        self.component_id = component_id
        self.pid = pid
        self.returncode = returncode
        self.console_tail = console_tail


class ComponentsNotOnline(SupervisorError):
    """Some components did not announce themselves online before the deadline."""

    def __init__(self, missing: Sequence[str], deadline_s: float, tails: dict[str, str]) -> None:
        lines = [f"not online after {deadline_s:.0f} s: {', '.join(missing)}"]
        for cid in missing:
            if tails.get(cid):
                lines.append(f"--- last lines of {cid}'s console log:\n{tails[cid]}")
        super().__init__("\n".join(lines))
        self.missing = list(missing)


class _Finished(Exception):
    """Raised by the lifecycle task to end the TaskGroup after an orderly stop."""


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


def component_argv(spec: ComponentSpec, cfg: UpConfig, broker_url: str, run_id: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        spec.package,
        "--dir",
        str(cfg.dir),
        "--broker",
        broker_url,
        "--instrument",
        cfg.instrument,
        "--component-id",
        spec.component_id,
        "--run-id",
        run_id,
        *spec.extra_args,
    ]


def _first_of(
    eg: BaseExceptionGroup[BaseException], kind: type[BaseException]
) -> BaseException | None:
    match: BaseException | None = eg.subgroup(kind)
    while isinstance(match, BaseExceptionGroup):
        match = match.exceptions[0]
    return match


@dataclass
class Supervisor:
    """One run of the testbed; use :func:`run_up`."""

    cfg: UpConfig
    view: StatusView = field(default_factory=NoView)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.run_id = self.cfg.run_id or new_run_id()
        self.topics = Topics(self.cfg.instrument)
        self.board = StatusBoard(self.topics)
        self.children: list[children.Child] = []
        self.log_dir = self.cfg.dir / "logs" / self.run_id
        self._started = time.monotonic()
        self._stopped_by = "signal"
        self.broker_address: BrokerAddress | None = None
        self.specs = list(self.cfg.components or default_components(self.cfg.rate_hz))
        self.portal_url = portal_url(self.specs)

    # -- the run --------------------------------------------------------------------

    async def run(self) -> RunSummary:
        cfg = self.cfg
        ensure_provisioned(cfg.dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        async with running_broker(cfg.broker, self.log_dir, testbed_dir=cfg.dir) as broker:
            log.info("broker_ready", kind=broker.kind, url=broker.url, pid=broker.pid)
            try:
                await self._run_with(broker)
            finally:
                await children.stop(self.children, grace_s=cfg.grace_s)
                with contextlib.suppress(FileNotFoundError):
                    (cfg.dir / STATE_FILE).unlink()
        return RunSummary(
            run_id=self.run_id,
            dir=cfg.dir,
            instrument=cfg.instrument,
            broker=broker,
            statuses=dict(self.board.statuses),
            state=self.board.state,
            elapsed_s=round(time.monotonic() - self._started, 3),
            stopped_by=self._stopped_by,
            rows=self.board.rows(),
            portal_url=self.portal_url,
        )

    async def _run_with(self, broker: BrokerInfo) -> None:
        # Issue 10: the supervisor reads status and state as its own (read-only) user.
        address = tool_address(self.cfg.dir, broker.address, SUPERVISOR)
        client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=f"testbed-supervisor-{os.getpid()}",
            clean_session=True,
            socket_options=NODELAY,
            timeout=10,
        )
        async with client:
            await client.subscribe(self.topics.status_all, qos=1)
            await client.subscribe(self.topics.state, qos=1)
            self.broker_address = broker.address
            await self._start_components(broker)
            self._write_state_file(broker)
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._listen(client), name="status-listener")
                    tg.create_task(self._show(), name="view")
                    for child in self.children:
                        tg.create_task(self._watch(child), name=f"watch-{child.name}")
                    if broker.process is not None:
                        tg.create_task(self._watch(broker.process), name="watch-broker")
                    tg.create_task(self._lifecycle(), name="lifecycle")
            except BaseExceptionGroup as eg:
                _, rest = eg.split(_Finished)
                if rest is None:
                    return  # the orderly end of the run
                # Report the cause a user can act on, not a group of cancellations.
                for kind in (SupervisorError, aiomqtt.MqttError):
                    first = _first_of(rest, kind)
                    if first is not None:
                        raise first from None
                raise

    async def _start_components(self, broker: BrokerInfo) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for spec in self.specs:
            argv = component_argv(spec, self.cfg, broker.url, self.run_id)
            child = await children.spawn(
                spec.component_id, argv, self.log_dir / f"{spec.component_id}.console.log", env=env
            )
            self.children.append(child)
            self.board.expect(spec.component_id, child.pid)
            log.info("component_started", component_id=spec.component_id, pid=child.pid)

    def _write_state_file(self, broker: BrokerInfo) -> None:
        """DIR/supervisor.json: where this run's broker and processes are (``testbed status``)."""
        state = {
            "run_id": self.run_id,
            "pid": os.getpid(),
            "instrument": self.cfg.instrument,
            "broker": broker.url,
            "broker_kind": broker.kind,
            "broker_pid": broker.pid,
            "components": {c.name: c.pid for c in self.children},
            "portal": self.portal_url,
        }
        (self.cfg.dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                await self.board.feed(message.topic.value, bytes(payload))

    async def _watch(self, child: children.Child) -> None:
        returncode = await child.process.wait()
        if not child.stopping:
            raise ComponentDied(child.name, child.pid, returncode, child.tail())

    async def _show(self) -> None:
        with self.view:
            while True:
                elapsed = time.monotonic() - self._started
                title = f"testbed {self.cfg.instrument} · run {self.run_id} · {elapsed:.0f} s"
                if self.portal_url:
                    title += f" · portal {self.portal_url}"
                self.view.update(self.board.rows(), title)
                await asyncio.sleep(1 / 2)

    async def _lifecycle(self) -> None:
        try:
            async with asyncio.timeout(self.cfg.online_deadline_s):
                await self.board.wait_until("online")
        except TimeoutError:
            missing = self.board.missing()
            tails = {c.name: c.tail() for c in self.children if c.name in missing}
            raise ComponentsNotOnline(missing, self.cfg.online_deadline_s, tails) from None
        log.info("all_online", after_s=round(time.monotonic() - self._started, 2))
        if self.portal_url:
            log.info("portal", url=self.portal_url)
        await self._initial_verification()
        try:
            async with asyncio.timeout(self.cfg.duration_s):
                await self.stop.wait()
        except TimeoutError:
            self._stopped_by = "duration"
        log.info("stopping", reason=self._stopped_by)
        await children.stop(self.children, grace_s=self.cfg.grace_s)
        # Each component's last act is a retained offline status with its final
        # counters; give the broker a moment to hand them to us.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINAL_STATUS_WAIT_S):
                await self.board.wait_until("offline")
        raise _Finished

    async def _initial_verification(self) -> None:
        """Pair every configured sensor the mother unit does not know yet (P8/U8).

        On freshly provisioned material this is the initial verification a
        verification officer performs; it is authorized, logged and counted like
        any pairing, so the demo works out of the box and shows the evidence.
        """
        sensors = [s.component_id for s in self.specs if s.package == "remote_sensor"]
        store = PairingStore(self.cfg.dir / MOTHER_UNIT, b"")  # peers are public; no key is read
        for sensor in sensors:
            if store.is_paired(sensor) or self.broker_address is None:
                continue
            result = await run_ceremony(
                self.cfg.dir, self.broker_address, sensor, reason="initial verification"
            )
            if not result.ok:
                raise SupervisorError(f"initial verification of {sensor} failed: {result.message}")
            log.info("initial_verification", sensor=sensor, comparison_code=result.comparison_code)


async def run_up(
    cfg: UpConfig, view: StatusView | None = None, stop: asyncio.Event | None = None
) -> RunSummary:
    """Run the testbed until ``stop`` is set or ``cfg.duration_s`` passed; see the module doc."""
    supervisor = Supervisor(cfg, view=view or NoView(), stop=stop or asyncio.Event())
    return await supervisor.run()
