"""The pairing ceremony over MQTT, sensor side (P8/U8, WELMEC 7.3 §4.1).

An unpaired sensor says hello (its certificate, a fresh nonce and an ephemeral
X25519 key, signed by its identity key) once per heartbeat until the mother
unit, holding an open authorization, answers. A paired sensor starts again
only when the mother unit asks ("request"). The new pairing is kept only when
the mother unit reports that it kept it too ("result"), so both sides always
agree on the key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from pydantic import ValidationError

from security_module.errors import SecurityError
from security_module.identity import DeviceIdentity
from security_module.pairing import PairingResponse, SensorPairing
from security_module.pairing_store import PairingRecord, PairingStore
from wire.client import LinkDown, MqttLink
from wire.codec import RejectedPayload, decode
from wire.messages import PairingMessage

log = structlog.get_logger()

# Heartbeats a confirmed sensor waits for the pairing result before it starts over.
RESULT_WAIT_HEARTBEATS = 10


class SensorPairingLink:
    def __init__(
        self,
        link: MqttLink,
        *,
        slot: str,
        identity: DeviceIdentity,
        instrument_id: str,
        mother_unit_id: str,
        store: PairingStore,
        on_paired: Callable[[PairingRecord], None],
    ) -> None:
        self.link = link
        self.slot = slot
        self.identity = identity
        self.instrument_id = instrument_id
        self.mother_unit_id = mother_unit_id
        self.store = store
        self.on_paired = on_paired
        self.session: SensorPairing | None = None
        self._candidate: PairingRecord | None = None
        self._candidate_at = 0.0
        self.wanted = asyncio.Event()
        if store.find(mother_unit_id) is None:
            self.wanted.set()
        link.route(link.topics.mother_pairing(slot), self.on_message)

    async def hello_loop(self) -> None:
        while True:
            await self.wanted.wait()
            await self.link.connected.wait()
            if self._candidate is not None:
                # Confirmed, waiting for the result: a fresh hello now would reach a mother
                # unit that has just paired us as "asks to be paired again" (inhibits).
                if not self._waited_for_result():
                    await asyncio.sleep(self.link.heartbeat_s)
                    continue
                self._candidate = None  # no result came: start over
            if self.session is None or self.session.state.value in ("failed", "done"):
                self.session = SensorPairing(
                    self.identity,
                    instrument_id=self.instrument_id,
                    mother_unit_id=self.mother_unit_id,
                )
                self._hello = self.session.start()
            try:
                await self.link.publish(
                    self.link.topics.sensor_pairing(self.slot),
                    PairingMessage(step="hello", body=self._hello.model_dump_json()),
                )
            except LinkDown:
                continue
            await asyncio.sleep(self.link.heartbeat_s)

    def _waited_for_result(self) -> bool:
        waited = time.monotonic() - self._candidate_at
        return waited > RESULT_WAIT_HEARTBEATS * self.link.heartbeat_s

    def _reject(self, reason: str, **fields: object) -> None:
        # T6 / ARCHITECTURE §7: counted in the total *and* by reason, like every
        # receiver (the total was missing here, so garbage went uncounted), and logged.
        self.link.counters["rejected"] += 1
        self.link.counters[f"rejected.{reason}"] += 1
        log.warning("payload_rejected", reason=reason, **fields)

    async def on_message(self, topic: str, payload: bytes) -> None:
        try:
            message = decode(PairingMessage, payload, topic)
        except RejectedPayload as e:
            self._reject(e.reason, topic=topic, detail=e.detail)
            return
        if message.step == "request":
            log.info("pairing_requested")
            self.session = None
            self.wanted.set()
        elif message.step == "response" and self.session is not None:
            try:
                response = PairingResponse.model_validate_json(message.body)
                confirm = self.session.receive_response(response)
            except (SecurityError, ValidationError) as e:
                log.warning("pairing_response_refused", error=str(e))
                self._reject("pairing", topic=topic)
                return
            self._candidate = self.session.record
            self._candidate_at = time.monotonic()
            log.info("pairing_confirming", comparison_code=self.session.comparison_code)
            await self.link.publish(
                self.link.topics.sensor_pairing(self.slot),
                PairingMessage(step="confirm", body=confirm.model_dump_json()),
            )
        elif message.step == "result" and self._candidate is not None:
            record, self._candidate = self._candidate, None
            if not message.ok:
                log.warning("pairing_failed", reason=message.message)
                self.session = None
                return
            self.store.save(record)
            self.wanted.clear()
            log.info(
                "paired",
                mother_unit=record.peer_id,
                key_id=record.key_id,
                comparison_code=message.message,
            )
            self.on_paired(record)
