"""A bench-only load generator: many paired sensors in one process (issue 9).

One process acts as sensors ``sensor-1..N``, each with its own provisioned
identity, a real pairing ceremony (the sensor side of P8/U8, answered when the
mother unit asks after an officer's authorization), its own boot counter, its
own sealer and an outbox that holds every sample until the mother unit
acknowledges it (T1). Nothing around the security module is shortcut: the
mother unit cannot tell these sensors from ``python -m remote_sensor``, except
that they share one MQTT connection.

Driven by JSON lines on stdin, answering JSON lines on stdout::

    {"op": "load", "count": 10, "rate_hz": 1000, "duration_s": 5, "window": 400}
        rate_hz > 0: open loop, that many samples/s in total over the first
        ``count`` sensors; rate_hz == 0: closed loop, as fast as the instrument
        acknowledges (at most ``window`` unacknowledged samples per sensor).
        ``heartbeat_s`` > 0 also publishes each sensor's retained status (T8).
    {"op": "drain", "timeout_s": 10}   wait until every sample is acknowledged
    {"op": "quit"}

Run as ``python -m testbed.bench.loadgen --dir DIR --broker URL --sensors N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from security_module.boot_counter import BootCounter
from security_module.envelope import Opener, SealedEnvelope, Sealer
from security_module.errors import SecurityError
from security_module.identity import DeviceIdentity
from security_module.pairing import PairingResponse, SensorPairing
from security_module.pairing_store import PairingRecord
from security_module.provisioning import Provisioned
from wire.client import NODELAY
from wire.codec import RejectedPayload, decode, encode
from wire.messages import (
    CONTROL_MSG_TYPE,
    SAMPLE_MSG_TYPE,
    ComponentStatus,
    PairingMessage,
    Sample,
    SensorControl,
)
from wire.settings import BrokerAddress
from wire.topics import Topics

PUBLISHERS = 64  # QoS 1 publishes in flight: bounded, each result checked (ARCHITECTURE §10)
TICK_S = 0.002


@dataclass
class SimSensor:
    """One sensor: identity, pairing session, sealer, and the unacknowledged samples."""

    slot: str
    identity: DeviceIdentity
    boot_counter: BootCounter
    session: SensorPairing | None = None
    candidate: PairingRecord | None = None
    sealer: Sealer | None = None
    opener: Opener | None = None
    boot: int = 0
    vm: float = 1000.0
    outbox: OrderedDict[int, bytes] = field(default_factory=OrderedDict)


@dataclass
class Counts:
    created: int = 0
    sent: int = 0
    publish_errors: int = 0
    outbox_full: int = 0
    retransmitted: int = 0
    acked: int = 0
    rejected_control: int = 0

    def reset(self) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, 0)


class LoadGenerator:
    def __init__(self, dir: Path, broker: BrokerAddress, count: int, mother_unit: str) -> None:
        material = Provisioned(dir)
        self.dir = dir
        self.broker = broker
        self.mother_unit = mother_unit
        self.material = material
        self.topics = Topics(material.instrument_id)
        self.slots = [f"sensor-{i}" for i in range(1, count + 1)]
        self.sensors: dict[str, SimSensor] = {}
        self.counts = Counts()
        self.queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(maxsize=2000)
        self.acked = asyncio.Event()
        self.client: aiomqtt.Client | None = None

    def _sensor(self, slot: str) -> SimSensor:
        sensor = self.sensors.get(slot)
        if sensor is None:
            identity = self.material.identity(slot)
            sensor = SimSensor(slot, identity, BootCounter(self.dir / slot / "boot"))
            self.sensors[slot] = sensor
        return sensor

    # -- output -----------------------------------------------------------------------

    @staticmethod
    def say(event: str, **fields: Any) -> None:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()

    # -- MQTT -------------------------------------------------------------------------

    async def run(self) -> None:
        b = self.broker
        async with aiomqtt.Client(
            b.host,
            b.port,
            username=b.username,
            password=b.password,
            identifier=f"bench-loadgen-{os.getpid()}",
            socket_options=NODELAY,
            max_inflight_messages=1000,
            max_queued_outgoing_messages=0,
        ) as client:
            client.pending_calls_threshold = 10 * PUBLISHERS  # bounded by the publishers
            self.client = client
            base = self.topics.base  # every sensor slot: mother/sensor/+/{pairing,control}
            await client.subscribe(f"{base}/mother/sensor/+/pairing", qos=1)
            await client.subscribe(f"{base}/mother/sensor/+/control", qos=1)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._dispatch(client), name="dispatch")
                for i in range(PUBLISHERS):
                    tg.create_task(self._publisher(client), name=f"publisher-{i}")
                self.say("ready", sensors=len(self.slots))
                await self._commands()
                raise _Quit

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload, retain = await self.queue.get()
            try:
                await client.publish(topic, payload, qos=1, retain=retain)
            except aiomqtt.MqttError:
                self.counts.publish_errors += 1
            else:
                self.counts.sent += 1

    async def _dispatch(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            parts = topic.split("/")  # mi/<instrument>/mother/sensor/<slot>/<what>
            slot = parts[4] if len(parts) == 6 else ""
            if slot not in self.sensors and slot not in self.slots:
                continue
            if topic.endswith("/pairing"):
                await self._on_pairing(self._sensor(slot), topic, payload)
            else:
                await self._on_control(self._sensor(slot), topic, payload)

    # -- pairing (sensor side of P8/U8) -------------------------------------------------

    async def _on_pairing(self, sensor: SimSensor, topic: str, payload: bytes) -> None:
        try:
            message = decode(PairingMessage, payload, topic)
        except RejectedPayload:
            return
        reply_topic = self.topics.sensor_pairing(sensor.slot)
        if message.step == "request":
            sensor.session = SensorPairing(
                sensor.identity,
                instrument_id=self.material.instrument_id,
                mother_unit_id=self.mother_unit,
            )
            hello = sensor.session.start()
            body = hello.model_dump_json()
            hello_message = encode(PairingMessage(step="hello", body=body))
            await self.queue.put((reply_topic, hello_message, False))
        elif message.step == "response" and sensor.session is not None:
            try:
                confirm = sensor.session.receive_response(
                    PairingResponse.model_validate_json(message.body)
                )
            except (SecurityError, ValueError) as e:
                self.say("pairing_refused", sensor=sensor.slot, error=str(e))
                return
            sensor.candidate = sensor.session.record
            body = confirm.model_dump_json()
            await self.queue.put(
                (reply_topic, encode(PairingMessage(step="confirm", body=body)), False)
            )
        elif message.step == "result" and sensor.candidate is not None:
            record, sensor.candidate = sensor.candidate, None
            if message.ok:
                # A new key: a new boot, so no nonce is ever reused (T3).
                sensor.boot = sensor.boot_counter.next_boot()
                sensor.outbox.clear()
                sensor.sealer = Sealer(record.key, sensor.slot, self.mother_unit, sensor.boot)
                sensor.opener = Opener(record.key, self.mother_unit, sensor.slot)

    # -- acknowledgements and retransmissions (T1) --------------------------------------

    async def _on_control(self, sensor: SimSensor, topic: str, payload: bytes) -> None:
        try:
            if sensor.opener is None:
                raise RejectedPayload("not_paired", topic)
            envelope = decode(SealedEnvelope, payload, topic)
            if envelope.msg_type != CONTROL_MSG_TYPE:
                raise RejectedPayload("misaddressed", topic)
            try:
                plaintext = sensor.opener.open(envelope, topic)
            except SecurityError as e:
                raise RejectedPayload("authentication", topic) from e
            control = decode(SensorControl, plaintext, topic)
        except RejectedPayload:
            self.counts.rejected_control += 1
            return
        if control.ack_boot == sensor.boot:
            outbox = sensor.outbox
            while outbox and next(iter(outbox)) <= control.ack_upto:
                outbox.popitem(last=False)
                self.counts.acked += 1
            self.acked.set()
        data_topic = self.topics.sensor_data(sensor.slot)
        for boot, seq in control.retransmit:
            sealed = sensor.outbox.get(seq) if boot == sensor.boot else None
            if sealed is not None:
                self.counts.retransmitted += 1
                await self.queue.put((data_topic, sealed, False))

    # -- load ---------------------------------------------------------------------------

    def _make(self, sensor: SimSensor, now: float) -> bytes:
        sealer = sensor.sealer
        assert sealer is not None
        sensor.vm += 0.001
        seq = sealer.seq
        sample = Sample(
            sensor_id=sensor.slot, boot=sensor.boot, seq=seq, created_at=now,
            vm=sensor.vm, p=101.325, t=288.15,
        )
        topic = self.topics.sensor_data(sensor.slot)
        sealed = encode(sealer.seal(SAMPLE_MSG_TYPE, topic, encode(sample)))
        sensor.outbox[seq] = sealed
        self.counts.created += 1
        return sealed

    async def _produce(self, sensor: SimSensor, window: int, *, open_loop: bool) -> bool:
        """One sample from ``sensor`` unless its outbox is full (then it stops measuring, L8)."""
        if sensor.sealer is None:
            return False
        if len(sensor.outbox) >= window:
            if open_loop:  # closed loop: a full window is the flow control itself
                self.counts.outbox_full += 1
            return False
        sealed = self._make(sensor, time.time())
        await self.queue.put((self.topics.sensor_data(sensor.slot), sealed, False))
        return True

    async def load(
        self, count: int, rate_hz: float, duration_s: float, window: int, heartbeat_s: float
    ) -> dict[str, Any]:
        active = [self.sensors[s] for s in self.slots[:count] if s in self.sensors]
        active = [s for s in active if s.sealer is not None]
        if not active:
            return {"error": "no paired sensor"}
        self.counts.reset()
        start = time.monotonic()
        end = start + duration_s
        next_heartbeat = start
        produced = 0
        i = 0
        while (now := time.monotonic()) < end:
            if heartbeat_s > 0 and now >= next_heartbeat:
                next_heartbeat += heartbeat_s
                for s in active:
                    await self.queue.put(self._status(s, heartbeat_s))
            if rate_hz > 0:
                due = int((now - start) * rate_hz) - produced
                for _ in range(due):
                    await self._produce(active[i % len(active)], window, open_loop=True)
                    produced += 1
                    i += 1
                await asyncio.sleep(TICK_S)
            else:
                made = 0
                for s in active:
                    if await self._produce(s, window, open_loop=False):
                        made += 1
                if not made:
                    self.acked.clear()
                    try:
                        async with asyncio.timeout(0.05):
                            await self.acked.wait()
                    except TimeoutError:
                        pass
        elapsed = time.monotonic() - start
        return {
            "sensors": len(active),
            "elapsed_s": elapsed,
            **{k: getattr(self.counts, k) for k in Counts.__dataclass_fields__},
            "unacked": sum(len(s.outbox) for s in active),
        }

    def _status(self, sensor: SimSensor, heartbeat_s: float) -> tuple[str, bytes, bool]:
        status = ComponentStatus(
            component="remote_sensor", component_id=sensor.slot, online=True, time=time.time(),
            pid=os.getpid(), heartbeat_s=heartbeat_s, detail={"boot": sensor.boot},
        )
        return self.topics.status(sensor.slot), encode(status), True

    async def drain(self, timeout_s: float) -> dict[str, Any]:
        end = time.monotonic() + timeout_s
        while (unacked := sum(len(s.outbox) for s in self.sensors.values())) and (
            time.monotonic() < end
        ):
            self.acked.clear()
            try:
                async with asyncio.timeout(0.1):
                    await self.acked.wait()
            except TimeoutError:
                pass
        return {"unacked": unacked, "acked": self.counts.acked}

    async def _commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "quit":
                return
            if op == "paired":
                paired = sorted(s.slot for s in self.sensors.values() if s.sealer is not None)
                self.say("paired", count=len(paired))
            elif op == "load":
                result = await self.load(
                    int(cmd["count"]), float(cmd.get("rate_hz", 0)),
                    float(cmd["duration_s"]), int(cmd.get("window", 1000)),
                    float(cmd.get("heartbeat_s", 0)),
                )
                self.say("done", **result)
            elif op == "drain":
                self.say("drained", **await self.drain(float(cmd.get("timeout_s", 10))))


class _Quit(Exception):
    """Leave the task group: the parent asked us to stop."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.bench.loadgen")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--sensors", type=int, required=True)
    parser.add_argument("--mother-unit", default="mother-unit")
    args = parser.parse_args(argv)
    gen = LoadGenerator(args.dir, BrokerAddress.parse(args.broker), args.sensors, args.mother_unit)
    try:
        asyncio.run(gen.run())
    except* _Quit:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
