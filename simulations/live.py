"""A fresh, live testbed for one scenario run: provisioned, started, verified, and always stopped.

It reuses the machinery of ``testbed up``: the :class:`~testbed.supervisor.Supervisor`
starts the broker (on a free port) and the supervised components and performs
the initial verification (pairing) of its sensors. Components the scenario
wants in its own hands (``TestbedSpec.managed``) are started here the way the
supervisor would start them (:func:`testbed.supervisor.component_argv`, one
process group each via :mod:`testbed.children`), possibly with another
environment (a changed program on ``PYTHONPATH``) or other flags (a shifted
clock), and sensors among them are paired by the same authorized ceremony.

Lifecycle::

    provision(DIR) -> Supervisor task (broker, supervised components)
    -> broker known: managed components spawned -> all online
    -> managed sensors paired -> instrument OPERATIONAL with every sensor paired: ready
    ... attack ...
    close(): managed components SIGTERM/SIGKILL, supervisor stopped, nothing left
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from security_module.provisioning import provision
from security_module.software_id import COMPONENT_PACKAGES, software_id_of_dirs
from simulations.model import TestbedSpec, package_of
from simulations.observe import Observer
from simulations.overlay import env_for
from testbed import children
from testbed.pairing_ceremony import CeremonyResult, run_ceremony
from testbed.supervisor import ComponentSpec, Supervisor, UpConfig, component_argv
from wire.settings import BrokerAddress
from wire.topics import Topics

READY_DEADLINE_S = 12.0
LEGALLY_RELEVANT = ("mother_unit", "remote_processing", "remote_sensor")
STOP_GRACE_S = 3.0


class TestbedNotReady(Exception):
    """The fresh testbed did not come up (which part, and its console log's tail)."""

    __test__ = False


@dataclass
class LiveTestbed:
    """One fresh instrument; see the module doc. Use :meth:`start` inside a TaskGroup."""

    __test__ = False

    spec: TestbedSpec
    dir: Path
    broker: str = "mosquitto"
    instrument: str = "gm-0001"
    run_id: str = "scenario"
    # Component id -> overlay directory: that component runs a changed build which the
    # type approval lists (a build evaluated without one of its defences; see overlay.py).
    builds: Mapping[str, Path] = field(default_factory=dict)
    supervisor: Supervisor | None = None
    managed: dict[str, children.Child] = field(default_factory=dict)
    stopped: list[children.Child] = field(default_factory=list)  # replaced or stopped by the attack
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[object] | None = None

    @property
    def topics(self) -> Topics:
        return Topics(self.instrument)

    @property
    def address(self) -> BrokerAddress:
        if self.supervisor is None or self.supervisor.broker_address is None:
            raise TestbedNotReady("the broker is not up yet")
        return self.supervisor.broker_address

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs" / self.run_id

    def config(self) -> UpConfig:
        return UpConfig(
            dir=self.dir,
            instrument=self.instrument,
            broker=self.broker,
            run_id=self.run_id,
            components=[
                ComponentSpec(package_of(c), c, self.spec.argv_for(c))
                for c in self.spec.supervised
                if c not in self.managed_ids
            ],
            online_deadline_s=READY_DEADLINE_S,
            grace_s=STOP_GRACE_S,
        )

    # -- material -------------------------------------------------------------------------

    @property
    def managed_ids(self) -> tuple[str, ...]:
        """Components in the scenario's hands: its own, and those running another build."""
        moved = [c for c in self.spec.supervised if c in self.builds]
        if "mother-unit" in (*moved, *self.spec.managed):
            # The supervisor pairs its sensors as soon as *its* components are online;
            # a mother unit it does not start may not be there yet. Pair them here.
            moved += [c for c in self.spec.supervised if package_of(c) == "remote_sensor"]
        return (*dict.fromkeys(moved), *self.spec.managed)

    def provision(self) -> None:
        """Keys, certificates, type approval for the code installed *now*.

        A component with another build gets that build approved instead: the scenario
        then evaluates an instrument that was type-approved without the defence.
        """
        overlays = {package_of(cid): overlay for cid, overlay in self.builds.items()}
        approved = {}
        for kind in LEGALLY_RELEVANT:
            overlay = overlays.get(kind)
            dirs = [
                (n, overlay / n if overlay and (overlay / n).is_dir() else installed_dir(n))
                for n in COMPONENT_PACKAGES[kind]
            ]
            approved[kind] = [software_id_of_dirs(dirs).full]
        provision(
            self.dir,
            instrument_id=self.instrument,
            sensors=self.spec.sensors,
            software_ids=approved,
        )

    # -- processes ------------------------------------------------------------------------

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Start the supervisor as a task of ``tg`` (a component dying ends the run)."""
        self.supervisor = Supervisor(self.config(), stop=self._stop)
        self._task = tg.create_task(self.supervisor.run(), name="supervisor")

    async def broker_up(self, deadline_s: float = READY_DEADLINE_S) -> BrokerAddress:
        end = time.monotonic() + deadline_s
        while self.supervisor is None or self.supervisor.broker_address is None:
            if self._task is not None and self._task.done():
                self._task.result()  # raises the supervisor's error
                raise TestbedNotReady("the supervisor ended before the broker was up")
            if time.monotonic() > end:
                raise TestbedNotReady(f"no broker after {deadline_s:.0f} s")
            await asyncio.sleep(0.05)
        return self.supervisor.broker_address

    async def spawn(
        self,
        component_id: str,
        extra: tuple[str, ...] | None = None,
        *,
        package: str | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> children.Child:
        """Start a component (or an impostor in its slot) by the scenario's hands.

        ``extra`` replaces the testbed's flags for it; ``env`` is added to ours
        (e.g. ``PYTHONPATH`` of a changed program). The process runs in DIR so
        that the project directory is not first on its module path.
        """
        address = await self.broker_up()
        argv = component_argv(
            ComponentSpec(
                package or package_of(component_id),
                component_id,
                self.spec.argv_for(component_id) if extra is None else extra,
            ),
            self.config(),
            address.url(),  # each component reads its own credentials from DIR (issue 10)
            self.run_id,
        )
        label = name or component_id
        if env is None and component_id in self.builds:
            env = env_for(self.builds[component_id])
        child = await children.spawn(
            label,
            argv,
            self.log_dir / f"{label}.console.log",
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=self.dir,
        )
        old = self.managed.get(label)
        if old is not None:
            self.stopped.append(old)
        self.managed[label] = child
        return child

    async def stop(self, label: str, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Stop a managed process (SIGTERM, SIGKILL after the grace); its exit code."""
        child = self.managed.pop(label)
        self.stopped.append(child)
        if sig is not signal.SIGTERM:
            _signal(child.pid, sig, group=True)
        await children.stop([child], grace_s=STOP_GRACE_S)
        return child.returncode

    async def stop_signal(self, label: str, sig: signal.Signals) -> None:
        """Send ``sig`` (e.g. SIGSTOP: a hung process) to a managed process's group."""
        _signal(self.managed[label].pid, sig, group=True)

    def pid(self, component_id: str) -> int:
        """The pid of a running component, managed or supervised."""
        if component_id in self.managed:
            return self.managed[component_id].pid
        assert self.supervisor is not None
        for child in self.supervisor.children:
            if child.name == component_id:
                return child.pid
        raise KeyError(component_id)

    async def wait_online(self, observer: Observer, labels: list[str], deadline_s: float) -> None:
        """Until each of these components announced itself online with its current pid."""

        def online() -> bool:
            return all(
                (s := observer.statuses.get(cid)) is not None
                and s.online
                and s.pid == self.pid(cid)
                for cid in labels
            )

        if not await observer.wait_for(online, deadline_s):
            tails = {c: self.managed[c].tail(8) for c in labels if c in self.managed}
            raise TestbedNotReady(f"not online after {deadline_s:.0f} s: {labels}\n{tails}")

    async def pair(self, sensor: str, reason: str = "initial verification") -> CeremonyResult:
        """The verification officer's authorized pairing (P8/U8), as ``testbed pair`` does it."""
        return await run_ceremony(self.dir, self.address, sensor, reason=reason, timeout_s=10.0)

    async def ready(self, observer: Observer) -> None:
        """Everything online, managed sensors paired, the instrument OPERATIONAL."""
        await self.broker_up()
        for cid in self.managed_ids:
            await self.spawn(cid)
        await observer.connected.wait()
        assert self.supervisor is not None
        end = time.monotonic() + READY_DEADLINE_S
        await self.wait_online(observer, list(self.spec.components), READY_DEADLINE_S)
        for cid in self.managed_ids:
            if package_of(cid) == "remote_sensor":
                result = await self.pair(cid)
                if not result.ok:
                    raise TestbedNotReady(f"initial verification of {cid} failed: {result.message}")
        sensors = {c for c in self.spec.components if package_of(c) == "remote_sensor"}

        def operational() -> bool:
            # Ready = OPERATIONAL, every sensor paired, and measurements flowing end to end.
            state = observer.state
            return (
                state is not None
                and state.state == "OPERATIONAL"
                and sensors <= set(state.paired_sensors)
                and (not sensors or state.counters.get("records_acked", 0) > 0)
            )

        if not await observer.wait_for(operational, max(1.0, end - time.monotonic())):
            state = observer.state
            seen = f"{state.state} {state.reasons} paired={state.paired_sensors}" if state else "-"
            raise TestbedNotReady(f"instrument not OPERATIONAL with every sensor paired: {seen}")

    async def shutdown(self) -> None:
        """Stop the managed processes, then the supervisor (which stops the rest)."""
        for child in [*self.managed.values(), *self.stopped]:
            if child.returncode is None:
                # A SIGSTOPped process must run again to act on SIGTERM in time.
                _signal(child.pid, signal.SIGCONT)
        await children.stop(list(self.managed.values()), grace_s=STOP_GRACE_S)
        self._stop.set()

    def leftovers(self) -> list[int]:
        """Process groups of this run that still exist (after the supervisor returned)."""
        everything = [*self.managed.values(), *self.stopped]
        if self.supervisor is not None:
            everything += self.supervisor.children
        return [c.pid for c in everything if children.group_alive(c.pid)]

    def kill_leftovers(self) -> list[int]:
        left = self.leftovers()
        for pid in left:
            _signal(pid, signal.SIGKILL, group=True)
        return left


def installed_dir(package: str) -> Path:
    """Where the components will find ``package``: beside this package (one project tree).

    Not ``importlib.util.find_spec`` in this process: whatever this process has on
    ``sys.path`` (a test runner's folders, an overlay), the components run from this
    project tree, and the identifiers for the run's type approval must be theirs.
    """
    root = Path(__file__).resolve().parent.parent / package
    if not (root / "__init__.py").is_file():
        raise ModuleNotFoundError(f"{package} is not installed beside simulations/ ({root})")
    return root


def _signal(pid: int, sig: signal.Signals, *, group: bool = False) -> None:
    """Signal a process (or its group) that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
