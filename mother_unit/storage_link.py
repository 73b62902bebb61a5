"""The link to the remote long-term store (WELMEC 7.3 §4.2, extension L).

Every record becomes the next leaf of the records log (L7, ``records_log``) and
stays in a bounded buffer until the store acknowledges it after a durable commit;
unacknowledged records are resent, byte-exact, with a signed checkpoint after
each batch. A full buffer inhibits the instrument ("storage unavailable") instead
of dropping anything, and the instrument resumes by itself once the store
acknowledges again (L8).

At start the link first asks the store what it holds beyond our persisted
acknowledged point (a crash may have come between the store's commit and our
persisting its ack) and adopts what a checkpoint signed by us proves ours; only
then are new records made, so a sequence number is never used twice.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mother_unit.core import Core
from mother_unit.evidence import Evidence
from mother_unit.records_log import RecordsLog, RecoveryFailed, Watermarks, write_atomically
from security_module.errors import SecurityError
from security_module.provisioning import Provisioned
from security_module.signing import CONTEXT_STORAGE_ACK, verify
from wire.client import LinkDown
from wire.codec import RejectedPayload, decode
from wire.messages import (
    MeasurementRecord,
    RecordLeafBatch,
    StorageAck,
    StorageQuery,
    StorageReply,
)

log = structlog.get_logger()

Stored = Callable[[MeasurementRecord], None]
StorageTrust = Mapping[str, Ed25519PublicKey]  # store component id -> its device key
WatermarkSource = Callable[[], Watermarks]

# Batches sent and not yet acknowledged. A record made while none is in flight goes out
# at once; while the limit is reached, new records gather and leave as one batch when an
# acknowledgement frees a slot: batching without a delay (like Nagle's algorithm without
# its timer), so fewer messages and checkpoints exactly when the store is busy (§10).
MAX_BATCHES_IN_FLIGHT = 2
INHIBIT_REASON = "storage unavailable: record buffer full"
SYNC_REASON = "storage unavailable: store not reachable"
CONFLICT_REASON = "storage unavailable: store holds a different record {seq}"


def load_storage_trust(material: Provisioned) -> dict[str, Ed25519PublicKey]:
    """Keys of the instrument's stores, each certificate checked against the CA."""
    return material.public_keys("remote_storage")


class InFlight:
    """The batches sent to the store and not yet acknowledged (pure bookkeeping)."""

    def __init__(self, limit: int = MAX_BATCHES_IN_FLIGHT) -> None:
        self.limit = limit
        self._ends: deque[int] = deque()  # last seq of each batch in flight, in order

    def __len__(self) -> int:
        return len(self._ends)

    @property
    def has_room(self) -> bool:
        return len(self._ends) < self.limit

    def sent(self, last_seq: int) -> None:
        self._ends.append(last_seq)

    def unsent(self, last_seq: int) -> None:
        """The batch ending at ``last_seq`` did not go out after all."""
        if self._ends and self._ends[-1] == last_seq:
            self._ends.pop()

    def acknowledged(self, stored_upto: int) -> int:
        """The store holds everything up to ``stored_upto``: those batches are done."""
        n = 0
        while self._ends and self._ends[0] <= stored_upto:
            self._ends.popleft()
            n += 1
        return n

    def clear(self) -> None:
        """Everything unacknowledged is sent again: nothing counts as in flight."""
        self._ends.clear()


class StorageLink:
    def __init__(
        self,
        core: Core,
        on_stored: Stored,
        records_log: RecordsLog,
        watermarks: WatermarkSource,
        *,
        on_recovered: Stored | None = None,
        evidence: Evidence | None = None,
        trust: StorageTrust,
    ) -> None:
        self.core = core
        self.evidence = evidence
        self.conflict_at: int | None = None
        self._latest: MeasurementRecord | None = None
        self.trust = trust
        self.on_stored = on_stored
        self.on_recovered = on_recovered or on_stored
        self.log = records_log
        self.watermarks = watermarks
        self._unacked: OrderedDict[int, tuple[MeasurementRecord, str]] = OrderedDict()
        self._unsent_from = records_log.next_seq
        self._wake = asyncio.Event()  # records to send and room in flight, or an ack came
        self.in_flight = InFlight()
        self._progress_at = time.monotonic()  # last ack that freed records, or last resend
        self.synced = asyncio.Event()  # recovery at start done: records may be made
        self._replies: asyncio.Queue[StorageReply] = asyncio.Queue()
        core.link.route(core.topics.storage_ack, self.on_ack)
        core.link.route(core.topics.storage_reply(core.link.client_id), self.on_reply)

    @property
    def next_seq(self) -> int:
        return self.log.next_seq

    @property
    def has_room(self) -> bool:
        return self.synced.is_set() and not self.core.status.is_inhibited("storage")

    @property
    def buffered(self) -> int:
        return len(self._unacked)

    def latest(self) -> MeasurementRecord | None:
        """The newest record made, acknowledged or not (what the display shows)."""
        return self._latest

    def add(self, record: MeasurementRecord) -> None:
        """L7: every accepted, converted measurement is stored automatically."""
        core = self.core
        record, leaf = self.log.append(record)
        self._latest = record
        if not self._unacked:
            self._progress_at = time.monotonic()  # the ack timeout runs from the oldest record
        self._unacked[record.seq] = (record, leaf.decode("utf-8"))
        core.count("records_created")
        if self.in_flight.has_room:
            self._wake.set()  # otherwise the acknowledgement that frees a slot sends it
        if len(self._unacked) >= core.limits.record_buffer and core.status.inhibit(
            "storage", INHIBIT_REASON
        ):
            # L8: stop accepting measurements rather than drop one.
            log.error("storage_buffer_full", buffered=len(self._unacked))
            core.changed()

    def _batch_end(self, first: int) -> int:
        # Batch ends fall on multiples of max_batch (signed boundaries) or the head,
        # so every batch, resent or not, carries a checkpoint after it.
        step = self.core.limits.max_batch
        return min(self.log.next_seq, (first // step + 1) * step)

    async def send_loop(self) -> None:
        core = self.core
        await self.sync()
        timeout = core.limits.storage_timeout_s
        while True:
            try:
                async with asyncio.timeout(timeout / 4):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self._unacked and time.monotonic() - self._progress_at > timeout:
                # No acknowledgement in time (the store lost them, or was away): send
                # everything unacknowledged again, even while new records keep coming.
                self._unsent_from = next(iter(self._unacked))
                self._progress_at = time.monotonic()
                self.in_flight.clear()
                core.count("records_resent")
            self._wake.clear()
            while (
                self._unacked
                and self._unsent_from < self.log.next_seq
                and self.in_flight.has_room
            ):
                first = max(self._unsent_from, next(iter(self._unacked)))
                last = self._batch_end(first)
                batch = RecordLeafBatch(
                    batch_id=f"r{first}-{last - 1}",
                    first_seq=first,
                    leaves=[self._unacked[s][1] for s in range(first, last)],
                    checkpoint=self.log.checkpoint_at(last),
                )
                # In flight before the publish returns: the store's ack may come first.
                self.in_flight.sent(last - 1)
                try:
                    await core.link.publish(core.topics.storage_records, batch)
                except LinkDown:
                    self.in_flight.unsent(last - 1)
                    break
                self._unsent_from = last

    async def on_ack(self, topic: str, payload: bytes) -> None:
        core = self.core
        try:
            ack = decode(StorageAck, payload, topic)
        except RejectedPayload as e:
            core.reject(e.reason, topic=topic, link="storage")
            return
        key = self.trust.get(ack.component_id)
        if key is None:
            core.reject("unknown_component", topic=topic, link="storage", sender=ack.component_id)
            return
        try:
            signature = base64.b64decode(ack.signature, validate=True)
            verify(ack, signature, key, CONTEXT_STORAGE_ACK, exclude={"signature"},
                   signer=ack.component_id)
        except (ValueError, SecurityError):
            # A_Spoofing: only the store's own acknowledgement may release samples (L1).
            core.reject("bad_signature", topic=topic, link="storage")
            return
        if ack.error:
            log.warning("storage_error", error=ack.error, stored_upto=ack.stored_upto)
        if not self.synced.is_set():
            return  # acks of a previous life: recovery reads the store itself
        if ack.conflict_at is not None and ack.conflict_at in self._unacked:
            self._conflict(ack.conflict_at)
        if self.in_flight.acknowledged(ack.stored_upto):
            self._wake.set()  # a slot is free: what gathered meanwhile goes as one batch
        acked = 0
        while self._unacked and next(iter(self._unacked)) <= ack.stored_upto:
            _, (record, _) = self._unacked.popitem(last=False)
            self.on_stored(record)
            acked += 1
        if acked:
            self._progress_at = time.monotonic()
            self.log.acknowledge(ack.stored_upto)
            # L1: persisted off the event loop, once per acknowledgement round of the
            # sensors (persist_moved); sensors are acknowledged only up to the
            # watermarks of the last point on disk (SensorLink.ack_point).
        core.count("records_acked", acked)
        if (
            acked
            and self.conflict_at is None  # a conflict needs a person, not a retry
            and core.status.is_inhibited("storage")
            and len(self._unacked) < core.limits.record_buffer // 2
        ):
            # L8: resumes by itself once the store acknowledges again.
            core.status.clear("storage")
            log.info("storage_available")
            core.changed()

    async def persist_moved(self) -> None:
        """L1: write the acknowledged point if it moved, in a thread; called by the one
        task that acknowledges sensors, before it does (one fsync for all the store
        acks since the last round, none on the event loop).

        The point is taken on the event loop, so edge and watermarks describe one
        moment; only after the write (fsync, rename, fsync of the directory) do its
        watermarks become what sensors may be acknowledged up to. A crash before that
        leaves the previous point, and ``sync`` adopts what the store holds beyond
        it, as for a crash between the store's commit and our persisting its ack.
        """
        if not self.synced.is_set():
            return  # sync() persists on its own until then: never two writers
        marks = self.watermarks()
        if not self.log.moved(marks):
            return
        size = self.log.acked_size
        data = self.log.snapshot(marks)
        try:
            await asyncio.to_thread(write_atomically, self.log.path, data)
        except OSError as e:
            # Sensors stay unacknowledged beyond the last point on disk; the next round
            # tries again.
            self.core.count("persist_errors")
            log.error("records_log_not_persisted", error=repr(e))
            return
        self.log.persisted(marks, size)
        self.core.count("acked_point_persisted")

    def _conflict(self, seq: int) -> None:
        """The store holds other bytes under one of our sequence numbers (A_DATA_GEN, L3):
        our record is not stored and must not be counted so; stop until someone looks."""
        core = self.core
        self.conflict_at = seq
        if core.status.inhibit("storage", CONFLICT_REASON.format(seq=seq)):
            log.error("storage_conflict", seq=seq)
            if self.evidence is not None:
                self.evidence.record("storage_conflict", {"seq": seq}, intervention=True)
            core.changed()

    async def on_reply(self, topic: str, payload: bytes) -> None:
        try:
            reply = decode(StorageReply, payload, topic)
        except RejectedPayload as e:
            self.core.reject(e.reason, topic=topic, link="storage")
            return
        self._replies.put_nowait(reply)

    async def _ask(self, query: StorageQuery) -> StorageReply:
        core = self.core
        await core.link.connected.wait()
        await core.link.publish(core.topics.storage_query, query)
        async with asyncio.timeout(core.limits.storage_timeout_s):
            while True:
                reply = await self._replies.get()
                if reply.query_id == query.query_id:
                    if not reply.ok:
                        raise RecoveryFailed(f"store refused the query: {reply.error}")
                    return reply

    async def _fetch_beyond(self) -> tuple[list[bytes], list[str]]:
        me, first = self.core.link.client_id, self.log.acked_size
        leaves: list[bytes] = []
        while True:
            q = StorageQuery(query_id=uuid.uuid4().hex, reply_to=me, op="records",
                             first_seq=first + len(leaves), limit=500)
            reply = await self._ask(q)
            leaves += [r.leaf.encode("utf-8") for r in reply.records]
            if not reply.more:
                break
        notes: list[str] = []
        if leaves:
            q = StorageQuery(query_id=uuid.uuid4().hex, reply_to=me, op="checkpoints",
                             first_seq=first + 1, last_seq=first + len(leaves), limit=500)
            notes = [c.note for c in (await self._ask(q)).checkpoints]
        return leaves, notes

    async def sync(self) -> None:
        """Adopt what the store committed beyond our persisted point, then allow new records."""
        core = self.core
        while not self.synced.is_set():
            try:
                leaves, notes = await self._fetch_beyond()
                records = self.log.recover(leaves, notes)
            except (TimeoutError, LinkDown) as e:
                if core.status.inhibit("storage", SYNC_REASON):
                    log.error("storage_unreachable_at_start", error=repr(e))
                    core.changed()
                continue
            except RecoveryFailed as e:
                # The store's extra records are not provably ours: leave them for the
                # verifier to report; new records with those numbers will conflict (L8).
                log.error("storage_recovery_failed", error=str(e))
                records = []
            for record in records:
                self.on_recovered(record)
            if records:
                self.log.persist(self.watermarks())
                core.count("records_recovered", len(records))
                log.info("storage_recovered", records=len(records), size=self.log.acked_size)
            self._unsent_from = self.log.next_seq
            self.synced.set()
            if core.status.clear("storage"):
                core.changed()
