"""A hand-driven instrument for tests and scenarios: one process per component.

``testbed up`` runs a whole instrument and stops it as a whole; a test that
kills the mother unit in the middle of a run, swaps a sensor or restarts the
broker needs each process in its own hands. :class:`Rig` starts components by
name in a provisioned directory, observes what they publish, and always
leaves nothing behind (``close``).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from security_module.logbook import Logbook, LogEntry
from security_module.provisioning import provision
from testbed.broker import embedded_argv
from testbed.pairing_ceremony import CeremonyResult, run_ceremony
from testbed.testing import (
    RunningBroker,
    kill_group,
    popen_in_group,
    require_mosquitto,
    wait_for_port,
)
from wire.client import NODELAY
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus, InstrumentState
from wire.settings import BrokerAddress
from wire.topics import Topics

PACKAGES = {
    "mother-unit": "mother_unit",
    "storage": "remote_storage",
    "processing": "remote_processing",
}


def package_of(component_id: str) -> str:
    return PACKAGES.get(component_id, "remote_sensor")


@dataclass
class Rig:
    dir: Path
    broker: RunningBroker
    instrument: str = "gm-0001"
    heartbeat_s: float = 0.5
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def provisioned(cls, dir: Path, broker: RunningBroker, *, sensors: int = 1) -> Rig:
        provision(dir, sensors=sensors)
        return cls(dir, broker)

    @property
    def topics(self) -> Topics:
        return Topics(self.instrument)

    @property
    def address(self) -> BrokerAddress:
        return self.broker.address

    # -- processes --------------------------------------------------------------------

    def start(
        self,
        component_id: str,
        *extra: str,
        package: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable,
            "-m",
            package or package_of(component_id),
            "--dir",
            str(self.dir),
            "--broker",
            self.broker.url,
            "--instrument",
            self.instrument,
            "--component-id",
            component_id,
            "--heartbeat-s",
            str(self.heartbeat_s),
            "--run-id",
            "rig",
            *extra,
        ]
        log = self.dir / "logs" / f"{component_id}.console.log"
        process = popen_in_group(argv, log, env=env)
        self.processes[component_id] = process
        return process

    def kill(self, component_id: str, sig: signal.Signals = signal.SIGKILL) -> int:
        process = self.processes.pop(component_id)
        if sig == signal.SIGKILL:
            process.kill()
            return process.wait(timeout=5)
        process.send_signal(sig)
        try:
            return process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return kill_group(process, grace_s=1.0)

    def alive(self, component_id: str) -> bool:
        process = self.processes.get(component_id)
        return process is not None and process.poll() is None

    def restart_broker(self) -> None:
        """Stop the broker and start a new one on the same port (its clients reconnect)."""
        old = self.broker
        kill_group(old.process, grace_s=1.0)
        if old.kind == "embedded":
            process = popen_in_group(embedded_argv(old.port), old.log)
            self.broker = RunningBroker(old.kind, old.port, process, old.log, old.host)
            wait_for_port(old.port, process, old.log)
            return
        conf = next(old.log.parent.glob(f"mosquitto-{old.port}.conf"))
        self.broker = start_mosquitto_at(conf, old)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                kill_group(process, grace_s=3.0)
        self.processes.clear()

    # -- observing ----------------------------------------------------------------------

    def client(self, name: str) -> aiomqtt.Client:
        a = self.address
        return aiomqtt.Client(
            a.host,
            a.port,
            username=a.username,
            password=a.password,
            identifier=f"rig-{name}-{time.monotonic_ns()}",
            socket_options=NODELAY,
        )

    async def retained(
        self, deadline_s: float = 2.0
    ) -> tuple[dict[str, ComponentStatus], InstrumentState | None]:
        statuses: dict[str, ComponentStatus] = {}
        state: InstrumentState | None = None
        async with self.client("read") as client:
            await client.subscribe(self.topics.status_all, qos=1)
            await client.subscribe(self.topics.state, qos=1)
            try:
                async with asyncio.timeout(deadline_s):
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        try:
                            if message.topic.value == self.topics.state:
                                state = decode(InstrumentState, payload, message.topic.value)
                                break
                            status = decode(ComponentStatus, payload, message.topic.value)
                            statuses[status.component_id] = status
                        except RejectedPayload:
                            continue
            except TimeoutError:
                pass
        return statuses, state

    async def wait_state(
        self, predicate: Callable[[InstrumentState], bool], deadline_s: float = 15.0, what: str = ""
    ) -> InstrumentState:
        """The first retained/updated instrument state that satisfies ``predicate``."""
        last: InstrumentState | None = None
        async with self.client("wait") as client:
            await client.subscribe(self.topics.state, qos=1)
            try:
                async with asyncio.timeout(deadline_s):
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        try:
                            last = decode(InstrumentState, payload, message.topic.value)
                        except RejectedPayload:
                            continue
                        if predicate(last):
                            return last
            except TimeoutError:
                pass
        raise AssertionError(f"state never became {what or predicate}; last: {last}")

    async def wait_online(self, component_ids: Sequence[str], deadline_s: float = 20.0) -> None:
        end = time.monotonic() + deadline_s
        while True:
            statuses, _ = await self.retained(0.5)
            pids = {cid: self.processes[cid].pid for cid in component_ids if cid in self.processes}
            if all(
                cid in statuses and statuses[cid].online and statuses[cid].pid == pids.get(cid)
                for cid in component_ids
            ):
                return
            for cid in component_ids:
                process = self.processes.get(cid)
                if process is not None and process.poll() is not None:
                    log = self.dir / "logs" / f"{cid}.console.log"
                    raise AssertionError(
                        f"{cid} exited {process.returncode}:\n{log.read_text()[-2000:]}"
                    )
            if time.monotonic() > end:
                raise AssertionError(
                    f"not online after {deadline_s} s: {component_ids}; saw {statuses}"
                )

    async def pair(self, sensor: str, reason: str = "initial verification") -> CeremonyResult:
        return await run_ceremony(self.dir, self.address, sensor, reason=reason)

    def logbook(self) -> list[LogEntry]:
        return Logbook(self.dir / "mother-unit").entries

    # -- a standard instrument ------------------------------------------------------------

    async def start_instrument(self, *sensors: str, rate_hz: float = 20.0) -> None:
        """Storage, processing, mother unit and the given sensors, all online and paired."""
        for cid in ("storage", "processing", "mother-unit"):
            self.start(cid)
        for sensor in sensors:
            self.start(sensor, "--rate-hz", str(rate_hz))
        await self.wait_online(["storage", "processing", "mother-unit", *sensors])
        for sensor in sensors:
            result = await self.pair(sensor)
            assert result.ok, result.message


def start_mosquitto_at(conf: Path, old: RunningBroker) -> RunningBroker:
    """Mosquitto again with the same configuration file (same port)."""
    process = popen_in_group([require_mosquitto(), "-c", str(conf)], old.log)
    broker = RunningBroker(old.kind, old.port, process, old.log, old.host)
    wait_for_port(old.port, process, old.log)
    return broker
