"""The sensor process: sample at a fixed rate, seal, publish, retransmit on request."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque

import structlog

from remote_sensor.outbox import Outbox, OutboxFull
from remote_sensor.profiles import GasMeterProfile
from security_module.boot_counter import BootCounter
from security_module.envelope import Opener, SealedEnvelope, Sealer
from security_module.errors import SecurityError
from security_module.pairing_store import PairingRecord
from wire.client import LinkDown, MqttLink
from wire.codec import RejectedPayload, decode, encode
from wire.messages import CONTROL_MSG_TYPE, SAMPLE_MSG_TYPE, Sample, SensorControl

log = structlog.get_logger()


class SensorService:
    def __init__(
        self,
        link: MqttLink,
        *,
        slot: str,
        device_id: str,
        recipient: str,
        boot_counter: BootCounter,
        rate_hz: float,
        profile: GasMeterProfile,
        outbox: Outbox,
        send_unpaired: bool = False,
    ) -> None:
        self.link = link
        self.device_id = device_id
        self.recipient = recipient
        self.boot_counter = boot_counter
        self.boot = boot_counter.next_boot()  # T3: a fresh nonce space for every start
        self.rate_hz = rate_hz
        self.profile = profile
        self.outbox = outbox
        self.send_unpaired = send_unpaired
        self.sealer: Sealer | None = None
        self.opener: Opener | None = None  # for the mother unit's control messages
        self._unsent: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self.topic = link.topics.sensor_data(slot)
        link.route(link.topics.sensor_control(slot), self.on_control)
        link.detail.update(boot=self.boot, next_seq=0, buffered=len(outbox), paired=False)

    def paired(self, record: PairingRecord) -> None:
        """Seal under this pairing key from now on (T3/T4)."""
        if self.sealer is not None:
            # Re-pairing: a new boot starts a new sequence space the mother unit can tell
            # apart; samples sealed under the old key cannot be opened any more.
            self.boot = self.boot_counter.next_boot()
            stale = self.outbox.acknowledge(self.boot, -1)
            if stale:
                log.warning("outbox_discarded_after_repairing", count=stale)
        self.sealer = Sealer(record.key, self.device_id, self.recipient, self.boot)
        self.opener = Opener(record.key, self.recipient, self.device_id)
        self.link.detail.update(paired=True, boot=self.boot)

    def _seal(self, sample: Sample) -> bytes:
        if self.sealer is None:
            # Not paired: a similar unit keeps measuring, but it has no key the mother
            # unit knows, so nothing it sends can be accepted (4.1).
            return encode(
                Sealer(os.urandom(32), self.device_id, self.recipient, self.boot).seal(
                    SAMPLE_MSG_TYPE, self.topic, encode(sample)
                )
            )
        return encode(self.sealer.seal(SAMPLE_MSG_TYPE, self.topic, encode(sample)))

    def resend_pending(self) -> None:
        """Queue every unacknowledged sample once more (after a restart of this process)."""
        for _, payload in self.outbox.items():
            self._unsent.append(payload)
        self._wake.set()

    async def sample_loop(self) -> None:
        """Produce samples on a fixed schedule, whether or not the broker is reachable."""
        period = 1.0 / self.rate_hz
        next_at = time.monotonic()
        last = time.time()
        seq = 0
        while True:
            now = time.time()
            vm, p, t = self.profile.next(now, now - last)
            last = now
            if self.sealer is not None:
                seq = self.sealer.seq
            elif not self.send_unpaired:
                # An unpaired sensor has no key to protect data with: it waits for an
                # authorized pairing and only says hello (P8/U8).
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                continue
            sample = Sample(
                sensor_id=self.device_id, boot=self.boot, seq=seq, created_at=now, vm=vm, p=p, t=t
            )
            try:
                if self.sealer is not None and self.outbox.full:
                    raise OutboxFull(str(self.outbox.capacity))
                payload = self._seal(sample)
                if self.sealer is not None:
                    self.outbox.add(self.boot, seq, payload)
                seq += 1
            except OutboxFull:
                # T1/L8: stop measuring rather than lose a sample nobody could account for.
                self.link.counters["outbox_full"] += 1
            else:
                self._unsent.append(payload)
                self._wake.set()
                self.link.detail.update(next_seq=seq + 1, buffered=len(self.outbox))
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def send_loop(self) -> None:
        """Publish each sample once, in order; on a lost link keep it and resume."""
        while True:
            await self._wake.wait()
            await self.link.connected.wait()
            while self._unsent:
                try:
                    await self.link.publish(self.topic, self._unsent[0])
                except LinkDown:
                    break
                self._unsent.popleft()
                self.link.counters["sent"] += 1
            else:
                self._wake.clear()

    async def on_control(self, topic: str, payload: bytes) -> None:
        try:
            if self.opener is None:
                raise RejectedPayload("not_paired", topic)
            envelope = decode(SealedEnvelope, payload, topic)
            if envelope.msg_type != CONTROL_MSG_TYPE:
                raise RejectedPayload("misaddressed", topic)
            try:
                plaintext = self.opener.open(envelope, topic)
            except SecurityError as e:
                raise RejectedPayload("authentication", topic, str(e)) from e
            control = decode(SensorControl, plaintext, topic)
        except RejectedPayload as e:
            self.link.counters["rejected"] += 1
            self.link.counters[f"rejected.{e.reason}"] += 1
            log.warning("payload_rejected", reason=e.reason, topic=topic, detail=e.detail)
            return
        self.outbox.acknowledge(control.ack_boot, control.ack_upto)
        self.link.detail["buffered"] = len(self.outbox)
        for boot, seq in control.retransmit:
            sealed = self.outbox.get(boot, seq)
            if sealed is not None:
                await self.link.publish(self.topic, sealed)
                self.link.counters["retransmitted"] += 1
