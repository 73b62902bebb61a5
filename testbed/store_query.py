"""Read a remote store over MQTT through its query interface (L6 retrieval).

The store answers ``StorageQuery`` on ``storage/reply/<client-id>``; this client
pages through every record and checkpoint so that ``verify-store --broker`` sees
exactly what a user of the store sees. It trusts nothing it receives: the rows go
through the same verifier as rows read from the file.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiomqtt

from wire.client import NODELAY
from wire.codec import RejectedPayload, decode, encode
from wire.messages import StorageQuery, StorageReply
from wire.settings import BrokerAddress
from wire.topics import Topics

Row = tuple[int, bytes, float]


class StoreUnreachable(Exception):
    """The store did not answer in time (or refused)."""


async def fetch_store(
    broker: BrokerAddress, topics: Topics, *, timeout_s: float = 10.0, page: int = 500
) -> tuple[list[Row], list[tuple[int, str]]]:
    """Every stored record and checkpoint, page by page."""
    me = f"verifier-{uuid.uuid4().hex[:12]}"
    async with aiomqtt.Client(
        broker.host, broker.port, username=broker.username, password=broker.password,
        identifier=me, socket_options=NODELAY, timeout=timeout_s,
    ) as client:
        await client.subscribe(topics.storage_reply(me), qos=1)
        messages = client.messages

        async def ask(**fields: Any) -> StorageReply:
            query = StorageQuery(query_id=uuid.uuid4().hex, reply_to=me, limit=page, **fields)
            await client.publish(topics.storage_query, encode(query), qos=1)
            try:
                async with asyncio.timeout(timeout_s):
                    async for message in messages:
                        payload = message.payload
                        if not isinstance(payload, bytes | bytearray):
                            continue
                        try:
                            reply = decode(StorageReply, bytes(payload), str(message.topic))
                        except RejectedPayload:
                            continue
                        if reply.query_id == query.query_id:
                            if not reply.ok:
                                raise StoreUnreachable(f"store refused: {reply.error}")
                            return reply
            except TimeoutError as e:
                raise StoreUnreachable(f"no answer from the store within {timeout_s} s") from e
            raise StoreUnreachable("connection closed")

        # The store's size first: records and checkpoints up to it are a consistent point.
        size = (await ask(op="info")).tree_size
        rows: list[Row] = []
        first = 0
        while size:
            reply = await ask(op="records", first_seq=first, last_seq=size - 1)
            rows += [(r.seq, r.leaf.encode("utf-8"), 0.0) for r in reply.records]
            if not reply.more or not reply.records:
                break
            first = reply.records[-1].seq + 1
        checkpoints: list[tuple[int, str]] = []
        first = 0
        while True:
            reply = await ask(op="checkpoints", first_seq=first, last_seq=size)
            checkpoints += [(c.tree_size, c.note) for c in reply.checkpoints]
            if not reply.more or not reply.checkpoints:
                break
            first = reply.checkpoints[-1].tree_size + 1
        return rows, checkpoints
