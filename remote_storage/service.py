"""The storage process: durable commit first, acknowledgement second (L1, L7, L8).

It also answers queries on ``storage/query`` (records by sequence or time range,
stored checkpoints, Merkle inclusion and consistency proofs) on
``storage/reply/<client-id>`` (L6: retrieval). The store keeps the leaves
byte-exact as the mother unit sent them and makes no legal decision (4.2).
"""

from __future__ import annotations

import asyncio
import base64

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from remote_storage.proofs import LeafTree, ProofError
from remote_storage.store import RecordStore, SequenceConflict, StoredRecord, StoreError
from security_module.signing import CONTEXT_STORAGE_ACK, sign
from wire.client import MqttLink
from wire.codec import RejectedPayload, decode
from wire.messages import (
    MeasurementRecord,
    RecordLeafBatch,
    StorageAck,
    StorageQuery,
    StorageReply,
    StoredCheckpoint,
    StoredLeaf,
)

log = structlog.get_logger()

# Replies must stay under the codec's payload limit (256 KiB): leaves are <= 8 KiB,
# but typically ~0.5 KiB; keep pages small enough for the worst case of 500 x 0.5 KiB.
REPLY_BUDGET_BYTES = 200_000


class StorageService:
    def __init__(self, link: MqttLink, store: RecordStore, ack_key: Ed25519PrivateKey) -> None:
        self.link = link
        self.store = store
        # The device key authenticates acknowledgements only; nothing about the data
        # depends on it (their integrity comes from the mother unit's checkpoints, 4.2).
        self.ack_key = ack_key
        self.tree = LeafTree(r.leaf for r in store.scan())
        link.route(link.topics.storage_records, self.on_records)
        link.route(link.topics.storage_query, self.on_query)
        link.detail["records"] = store.size()

    def _reject(self, reason: str, **fields: object) -> None:
        self.link.counters["rejected"] += 1
        self.link.counters[f"rejected.{reason}"] += 1
        log.warning("payload_rejected", reason=reason, **fields)

    @staticmethod
    def parse_batch(batch: RecordLeafBatch, topic: str) -> list[StoredRecord]:
        """Leaves -> rows; each leaf must be a record with the sequence number of its place."""
        records = []
        for i, text in enumerate(batch.leaves):
            leaf = text.encode("utf-8")
            record = decode(MeasurementRecord, leaf, topic)
            if record.seq != batch.first_seq + i:
                raise RejectedPayload("seq_mismatch", topic, f"leaf {i} has seq {record.seq}")
            records.append(StoredRecord(seq=record.seq, leaf=leaf, created_at=record.created_at))
        return records

    async def on_records(self, topic: str, payload: bytes) -> None:
        try:
            batch = decode(RecordLeafBatch, payload, topic)
            records = self.parse_batch(batch, topic)
        except RejectedPayload as e:
            self._reject(e.reason, topic=topic, detail=e.detail)
            return
        error: str | None = None
        conflict_at: int | None = None
        before = self.store.size()
        try:
            # SQLite's fsync blocks; keep the event loop (heartbeats, acks) responsive.
            stored_upto = await asyncio.to_thread(self.store.append, records, batch.checkpoint)
        except SequenceConflict as e:
            self._reject("sequence_conflict", seq=e.seq, batch_id=batch.batch_id)
            # What we hold from e.seq on is not what was sent: acknowledge only before it.
            stored_upto, error, conflict_at = e.seq - 1, str(e), e.seq
        except StoreError as e:
            log.error("store_failed", error=str(e), batch_id=batch.batch_id)
            self.link.counters["store_errors"] += 1
            stored_upto, error = self.store.size() - 1, str(e)
        added = self.store.size() - before
        if added:
            self.tree.extend(r.leaf for r in records if r.seq >= before and r.seq < before + added)
        self.link.counters["records_stored"] += added
        self.link.counters["batches"] += 1
        self.link.detail["records"] = self.store.size()
        ack = StorageAck(
            component_id=self.link.client_id,
            batch_id=batch.batch_id,
            stored_upto=stored_upto,
            tree_size=self.store.size(),
            error=error,
            conflict_at=conflict_at,
        )
        signature = sign(ack, self.ack_key, CONTEXT_STORAGE_ACK, exclude={"signature"})
        ack = ack.model_copy(update={"signature": base64.b64encode(signature).decode()})
        # The next batch's commit need not wait for this ack's PUBACK (acks stay in order).
        await self.link.publish_soon(self.link.topics.storage_ack, ack)

    async def on_query(self, topic: str, payload: bytes) -> None:
        try:
            query = decode(StorageQuery, payload, topic)
        except RejectedPayload as e:
            self._reject(e.reason, topic=topic, detail=e.detail)
            return
        self.link.counters["queries"] += 1
        try:
            reply = await asyncio.to_thread(self.answer, query)
        except (StoreError, ProofError) as e:
            reply = StorageReply(
                query_id=query.query_id, ok=False, error=str(e)[:500], tree_size=self.store.size()
            )
        await self.link.publish(self.link.topics.storage_reply(query.reply_to), reply)

    def answer(self, q: StorageQuery) -> StorageReply:
        """The reply to one query (pure over the store and the tree; no network)."""
        size = self.store.size()
        base = {"query_id": q.query_id, "tree_size": size}
        if q.op == "info":
            return StorageReply(**base)
        if q.op == "records":
            rows = self.store.query(q.first_seq or 0, q.last_seq, q.since, q.until, q.limit + 1)
            page: list[StoredLeaf] = []
            used = 0
            for r in rows[: q.limit]:
                used += len(r.leaf) + 64
                if page and used > REPLY_BUDGET_BYTES:
                    break
                leaf = r.leaf
                text = leaf.decode("utf-8", "replace") if isinstance(leaf, bytes) else str(leaf)
                page.append(StoredLeaf(seq=r.seq, leaf=text))
            return StorageReply(**base, records=page, more=len(page) < len(rows))
        if q.op == "checkpoints":
            cps = self.store.checkpoints(q.first_seq or 0, q.last_seq, q.limit + 1)
            return StorageReply(
                **base,
                checkpoints=[StoredCheckpoint(tree_size=t, note=n) for t, n in cps[: q.limit]],
                more=len(cps) > q.limit,
            )
        if q.op == "inclusion":
            if q.leaf_index is None:
                raise ProofError("inclusion needs leaf_index")
            proof = self.tree.inclusion(q.leaf_index, q.tree_size)
            return StorageReply(**base, proof=[h.hex() for h in proof.hashes])
        if q.first_size is None:
            raise ProofError("consistency needs first_size")
        cproof = self.tree.consistency(q.first_size, q.tree_size)
        return StorageReply(**base, proof=[h.hex() for h in cproof.hashes])
