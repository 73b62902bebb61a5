"""A whole instrument for benchmarking: components, a load generator, an observer.

:class:`BenchInstrument` provisions a directory with ``sensors`` sensors, starts
storage, processing and the mother unit as their own processes (exactly as
``testbed up`` does), starts the load generator (:mod:`testbed.bench.loadgen`),
pairs every sensor through real, authorized ceremonies (the officer tool's bulk
mode), and observes the broker: record batches (record seq → the sample's
creation time) and the store's acknowledgements. The observer only listens; it
changes nothing the instrument does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from security_module.provisioning import provision
from testbed import children
from testbed.bench.stats import ProcessSample, sample_process
from testbed.pairing_ceremony import run_ceremonies
from wire.client import NODELAY
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus, InstrumentState, RecordLeafBatch, StorageAck
from wire.settings import BrokerAddress
from wire.topics import Topics

COMPONENTS = {"storage": "remote_storage", "processing": "remote_processing",
              "mother-unit": "mother_unit"}
INSTRUMENT = "gm-0001"


class BenchError(Exception):
    """The instrument under benchmark did not come up or went away."""


@dataclass
class Observer:
    """Listens to record batches and store acknowledgements (never publishes)."""

    topics: Topics
    record_latency: bool = False
    created: dict[int, tuple[float, float]] = field(default_factory=dict)  # created, received
    latencies_ms: list[float] = field(default_factory=list)
    t7_ms: list[float] = field(default_factory=list)  # received_at - created_at, per record
    stored_upto: int = -1
    state: InstrumentState | None = None
    statuses: dict[str, ComponentStatus] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_records(self, payload: bytes, topic: str) -> None:
        if not self.record_latency:
            return
        batch = decode(RecordLeafBatch, payload, topic)
        for i, leaf in enumerate(batch.leaves):
            seq = batch.first_seq + i
            if seq > self.stored_upto and seq not in self.created:
                record = json.loads(leaf)
                self.created[seq] = (float(record["created_at"]), float(record["received_at"]))

    def on_ack(self, payload: bytes, topic: str, at: float) -> None:
        ack = decode(StorageAck, payload, topic)
        if ack.stored_upto <= self.stored_upto:
            return
        if self.record_latency:
            for seq in range(self.stored_upto + 1, ack.stored_upto + 1):
                times = self.created.pop(seq, None)
                if times is not None:
                    self.latencies_ms.append((at - times[0]) * 1000.0)
                    self.t7_ms.append((times[1] - times[0]) * 1000.0)
        self.stored_upto = ack.stored_upto
        self.changed.set()

    async def run(self, client: aiomqtt.Client) -> None:
        t = self.topics
        for topic in (t.storage_records, t.storage_ack, t.state, t.status_all):
            await client.subscribe(topic, qos=1)
        async for message in client.messages:
            at = time.time()
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                if topic == t.storage_ack:
                    self.on_ack(payload, topic, at)
                elif topic == t.storage_records:
                    self.on_records(payload, topic)
                elif topic == t.state:
                    self.state = decode(InstrumentState, payload, topic)
                    self.changed.set()
                elif payload:
                    status = decode(ComponentStatus, payload, topic)
                    self.statuses[status.component_id] = status
                    self.changed.set()
            except RejectedPayload:
                continue

    def start_latency(self) -> None:
        self.created.clear()
        self.latencies_ms = []
        self.t7_ms = []
        self.record_latency = True

    def stop_latency(self) -> tuple[list[float], list[float]]:
        """End to end (creation -> store ack) and T7 (creation -> mother unit), in ms."""
        self.record_latency = False
        self.created.clear()
        return self.latencies_ms, self.t7_ms


@dataclass
class BenchInstrument:
    dir: Path
    broker: BrokerAddress
    sensors: int
    components: dict[str, children.Child] = field(default_factory=dict)
    loadgen: asyncio.subprocess.Process | None = None
    observer: Observer = field(default_factory=lambda: Observer(Topics(INSTRUMENT)))
    paired: int = 0
    pairing_s: float = 0.0

    @property
    def mother_pid(self) -> int:
        return self.components["mother-unit"].pid

    def mother_sample(self) -> ProcessSample:
        return sample_process(self.mother_pid)

    def pids(self) -> dict[str, int]:
        pids = {name: c.pid for name, c in self.components.items()}
        if self.loadgen is not None:
            pids["loadgen"] = self.loadgen.pid
        return pids

    async def _start_components(self) -> None:
        for cid, package in COMPONENTS.items():
            argv = [sys.executable, "-m", package, "--dir", str(self.dir),
                    "--broker", self.broker.url(), "--instrument", INSTRUMENT,
                    "--component-id", cid, "--heartbeat-s", "0.5", "--run-id", "bench",
                    "--log-level", "warning"]
            log = self.dir / "logs" / f"{cid}.console.log"
            self.components[cid] = await children.spawn(cid, argv, log)

    async def _wait_online(self, deadline_s: float = 30.0) -> None:
        end = time.monotonic() + deadline_s
        want = {cid: c.pid for cid, c in self.components.items()}
        while True:
            st = self.observer.statuses
            if all(
                cid in st and st[cid].online and st[cid].pid == pid for cid, pid in want.items()
            ):
                return
            for cid, child in self.components.items():
                if child.returncode is not None:
                    raise BenchError(f"{cid} exited: {child.tail()}")
            if time.monotonic() > end:
                raise BenchError(f"components not online after {deadline_s} s: {sorted(st)}")
            self.observer.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self.observer.changed.wait()

    async def _start_loadgen(self) -> None:
        argv = [sys.executable, "-m", "testbed.bench.loadgen", "--dir", str(self.dir),
                "--broker", self.broker.url(), "--sensors", str(self.sensors)]
        log = (self.dir / "logs" / "loadgen.console.log").open("ab")
        try:
            self.loadgen = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=log, start_new_session=True, preexec_fn=children.die_with_parent(),
                limit=1 << 20,
            )
        finally:
            log.close()
        await self.expect("ready", 30.0)

    async def command(self, wait_s: float, **cmd: Any) -> dict[str, Any]:
        """Send one command to the load generator; its answer (see ``loadgen``)."""
        gen = self.loadgen
        assert gen is not None
        assert gen.stdin is not None
        gen.stdin.write((json.dumps(cmd) + "\n").encode())
        await gen.stdin.drain()
        return await self.expect(None, wait_s)

    async def expect(self, event: str | None, timeout_s: float) -> dict[str, Any]:
        gen = self.loadgen
        assert gen is not None
        assert gen.stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await gen.stdout.readline()
                if not line:
                    raise BenchError(f"load generator exited ({gen.returncode})")
                answer: dict[str, Any] = json.loads(line)
                if event is None or answer.get("event") == event:
                    return answer

    async def pair_all(self) -> None:
        t0 = time.perf_counter()
        ids = [f"sensor-{i}" for i in range(1, self.sensors + 1)]
        results = await run_ceremonies(self.dir, self.broker, ids, concurrency=16,
                                       timeout_s=60.0)
        self.pairing_s = time.perf_counter() - t0
        failed = [r for r in results if not r.ok]
        if failed:
            raise BenchError(f"{len(failed)} pairings failed, first: {failed[0].message}")
        # The sensor side keeps a pairing only after the mother unit's "result".
        end = time.monotonic() + 10.0
        while True:
            self.paired = int((await self.command(10.0, op="paired"))["count"])
            if self.paired == self.sensors or time.monotonic() > end:
                break
            await asyncio.sleep(0.1)
        if self.paired != self.sensors:
            raise BenchError(f"only {self.paired} of {self.sensors} sensors hold their pairing")

    async def wait_stored(self, upto: int, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while self.observer.stored_upto < upto:
            if time.monotonic() > end:
                return False
            self.observer.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.observer.changed.wait()
        return True

    async def drain(self, timeout_s: float = 30.0) -> dict[str, Any]:
        return await self.command(timeout_s + 5, op="drain", timeout_s=timeout_s)

    async def state(self, deadline_s: float = 3.0) -> InstrumentState | None:
        """A state published after now (the mother unit publishes each heartbeat)."""
        before = self.observer.state
        end = time.monotonic() + deadline_s
        while self.observer.state is before and time.monotonic() < end:
            self.observer.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.observer.changed.wait()
        return self.observer.state

    def check_alive(self) -> None:
        for cid, child in self.components.items():
            if child.returncode is not None:
                raise BenchError(f"{cid} exited during the benchmark: {child.tail()}")


@contextlib.asynccontextmanager
async def bench_instrument(
    workdir: Path, broker: BrokerAddress, sensors: int
) -> AsyncIterator[BenchInstrument]:
    """Provision, start, pair; stop everything on exit (also on error or cancel)."""
    dir = workdir / f"instrument-{sensors}"
    os.environ.setdefault("TESTBED_LOG_LEVEL", "warning")
    await asyncio.to_thread(provision, dir, sensors=sensors, force=True)
    inst = BenchInstrument(dir, broker, sensors)
    async with aiomqtt.Client(broker.host, broker.port, username=broker.username,
                              password=broker.password, socket_options=NODELAY,
                              identifier=f"bench-observer-{os.getpid()}") as client:
        listener = asyncio.create_task(inst.observer.run(client), name="bench-observer")
        try:
            await inst._start_components()
            await inst._wait_online()
            await inst._start_loadgen()
            await inst.pair_all()
            yield inst
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await _stop_loadgen(inst.loadgen)
            await children.stop(list(inst.components.values()), grace_s=3.0)


async def _stop_loadgen(gen: asyncio.subprocess.Process | None) -> None:
    if gen is None or gen.returncode is not None:
        return
    with contextlib.suppress(OSError, BrokenPipeError, ConnectionResetError):
        assert gen.stdin is not None
        gen.stdin.write(b'{"op": "quit"}\n')
        await gen.stdin.drain()
    try:
        async with asyncio.timeout(3):
            await gen.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(gen.pid, 9)
        await gen.wait()
