"""The mother unit: accept sensor samples, have them converted, indicate, store.

Data path (each arrow is an MQTT message, each box a separate process):

    sensor --sealed Sample--> [mother unit] --ConversionRequest--> processing
    processing --ConversionResponse--> [mother unit] --RecordBatch--> storage
    storage --StorageAck--> [mother unit] --SensorControl(ack)--> sensor

Each link is its own module; this one wires them together and owns what the
instrument shows: the indication and the state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mother_unit.availability import Availability
from mother_unit.commands import Commands
from mother_unit.core import Core
from mother_unit.evidence import Evidence
from mother_unit.non_relevant import NonRelevantCommands
from mother_unit.pairing_link import PairingLink
from mother_unit.processing_check import ProcessingTrust
from mother_unit.processing_link import ProcessingLink
from mother_unit.records_log import RecordsLog
from mother_unit.sensor_link import SensorLink
from mother_unit.storage_link import StorageLink, StorageTrust
from security_module.identity import DeviceIdentity
from security_module.pairing_store import PairingStore
from security_module.type_approval import TypeApproval
from wire.client import LinkDown
from wire.messages import ConversionResponse, Indication, InstrumentState, MeasurementRecord, Sample


class MotherUnit:
    def __init__(
        self,
        core: Core,
        evidence: Evidence,
        approval: TypeApproval,
        software_id: str,
        *,
        identity: DeviceIdentity,
        va_public_key: Ed25519PublicKey,
        pairings: PairingStore,
        boot: int,
        records_log: RecordsLog,
        processing_trust: ProcessingTrust,
        storage_trust: StorageTrust,
        non_relevant_issuers: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> None:
        self.core = core
        self.evidence = evidence
        self.approval = approval
        self.software_id = software_id
        self.software_ids: dict[str, str] = {"mother_unit": software_id}
        self.availability = Availability(core)
        # S: the protective interface knows the portal's key (role remote_portal).
        self.commands = Commands(core, evidence, non_relevant_issuers)
        self.storage = StorageLink(
            core,
            self._stored,
            records_log,
            lambda: self.sensors.watermarks(),  # noqa: PLW0108 - sensors are made below
            on_recovered=self._recovered,
            evidence=evidence,
            trust=storage_trust,
        )
        self.processing = ProcessingLink(
            core, evidence, approval, processing_trust, self._converted
        )
        self.sensors = SensorLink(
            core,
            evidence,
            self._accepted,
            self.availability,
            boot=boot,
            persisted=lambda: records_log.watermarks,
            persist=self.storage.persist_moved,
        )
        self.pairing = PairingLink(
            core,
            evidence,
            self.commands,
            identity=identity,
            va_public_key=va_public_key,
            approved_sensor_ids=list(approval.approved_sensor_ids),
            store=pairings,
            on_paired=self.sensors.paired,
            on_unpaired=self.sensors.unpaired,
        )
        self.non_relevant = NonRelevantCommands(
            self.commands, evidence, approval, pairings, self.instrument_state
        )
        for sensor in pairings.peers():
            self.sensors.paired(pairings.get(sensor))
        # 4.2/L1: resume from the store's last acknowledgement (after pairing resets tracks).
        self.sensors.restore_watermarks(records_log.watermarks)

    # -- the data path ----------------------------------------------------------------

    def _accepted(self, sample: Sample, received_at: float) -> bool:
        return self.storage.has_room and self.processing.submit(sample, received_at)

    def _converted(
        self,
        samples: list[tuple[Sample, float]],
        response: ConversionResponse,
        vb_unavailable: str | None,
    ) -> None:
        # L4: a stored record names the software that produced it, both parts.
        software_ids = {"remote_processing": response.software_id, "mother_unit": self.software_id}
        for (sample, received_at), vb in zip(samples, response.results, strict=True):
            self.storage.add(
                MeasurementRecord(
                    instrument=self.core.topics.instrument,
                    seq=self.storage.next_seq,
                    sensor_id=sample.sensor_id,
                    sample_boot=sample.boot,
                    sample_seq=sample.seq,
                    created_at=sample.created_at,
                    received_at=received_at,
                    vm=sample.vm,
                    # 4.4: a result that is not approved is stored, never indicated as Vb.
                    vb=None if vb_unavailable else vb,
                    p=sample.p,
                    t=sample.t,
                    software_ids=software_ids,
                    parameter_version=response.parameter_version,
                    vb_unavailable=vb_unavailable,
                )
            )

    def _stored(self, record: MeasurementRecord) -> None:
        self.sensors.stored(record.sensor_id, record.sample_boot, record.sample_seq)

    def _recovered(self, record: MeasurementRecord) -> None:
        self.sensors.recovered(record.sensor_id, record.sample_boot, record.sample_seq)

    # -- what the instrument shows ---------------------------------------------------------

    async def indication_loop(self) -> None:
        """The display: the newest measurement, refreshed at most 10 times a second."""
        shown = -1
        while True:
            await asyncio.sleep(0.1)
            record = self.storage.latest()
            if record is None or record.seq == shown:
                continue
            indication = Indication(
                instrument=record.instrument,
                sensor_id=record.sensor_id,
                record_seq=record.seq,
                vm=record.vm,
                vb=record.vb,
                vb_unavailable=record.vb_unavailable,
                time=time.time(),
            )
            try:
                await self.core.link.publish(self.core.topics.indication, indication, retain=True)
                shown = record.seq
            except LinkDown:
                await self.core.link.connected.wait()

    def instrument_state(self) -> InstrumentState:
        core = self.core
        counters = core.link.counters
        return InstrumentState(
            instrument=core.topics.instrument,
            state=core.status.state,
            reasons=core.status.reasons,
            time=time.time(),
            event_counter=core.event_counter,
            counters={k: v for k, v in counters.items() if "." not in k},
            rejected={
                k.split(".", 1)[1]: v for k, v in counters.items() if k.startswith("rejected.")
            },
            # MID Annex I 8.3: every identifier, with its approval status.
            software_ids={**self.software_ids, **self.processing.software_ids},
            software_approved={
                "mother_unit": self.software_id
                in self.approval.software_ids.get("mother_unit", []),
                **self.processing.software_approved,
            },
            paired_sensors=sorted(self.sensors.openers),
            t7_ms=self.sensors.t7.summary(),
        )

    async def state_loop(self) -> None:
        core = self.core
        core.changed()
        while True:
            try:
                async with asyncio.timeout(core.link.heartbeat_s):
                    await core.state_changed.wait()
            except TimeoutError:
                pass
            core.state_changed.clear()
            core.link.detail.update(state=core.status.state, buffered_records=self.storage.buffered)
            try:
                await core.link.publish(core.topics.state, self.instrument_state(), retain=True)
            except LinkDown:
                await core.link.connected.wait()

    def self_check(self) -> None:
        """A_BOOT, P2/U2: our own software identifier must be one the type approval lists."""
        approved = self.approval.software_ids.get("mother_unit", [])
        self.evidence.record(
            "startup",
            {"software_id": self.software_id, "approved": self.software_id in approved},
            intervention=False,
        )
        if self.software_id not in approved:
            self.evidence.record(
                "software_id_mismatch",
                {"component": "mother_unit", "got": self.software_id, "expected": approved},
            )
            self.core.status.inhibit(
                "software:mother_unit", "mother unit software identifier not approved"
            )
            self.core.changed()

    async def run(self) -> None:
        self.self_check()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.evidence.loop(), name="evidence")
            tg.create_task(self.core.link.run(), name="link")
            tg.create_task(self.processing.send_loop(), name="processing-send")
            tg.create_task(self.processing.watchdog(), name="processing-watchdog")
            tg.create_task(self.processing.known_answer_loop(), name="processing-kat")
            tg.create_task(self.storage.send_loop(), name="storage-send")
            tg.create_task(self.sensors.control_loop(), name="sensor-control")
            tg.create_task(self.indication_loop(), name="indication")
            tg.create_task(self.state_loop(), name="state")
