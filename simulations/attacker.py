"""The attacker's MQTT client: an ordinary aiomqtt client, nothing the components provide.

It can publish any bytes on any topic, capture what others publish, and relay
(subscribe, modify, republish) - the three things an intruder on the broker's
network can do. It identifies itself as whoever the scenario says; with a
broker that authenticates (issue 10) the scenario decides which credentials
it has, by passing them in the broker address.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType

import aiomqtt

from wire.client import NODELAY
from wire.settings import BrokerAddress

Captured = tuple[str, bytes]


@dataclass
class Attacker:
    address: BrokerAddress
    name: str = "attacker"
    published: int = 0
    _client: aiomqtt.Client | None = None
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def __aenter__(self) -> Attacker:
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            identifier=f"{self.name}-{secrets.token_hex(3)}",
            socket_options=NODELAY,
            max_inflight_messages=1000,
            timeout=10,
        )
        self._client = await self._stack.enter_async_context(client)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> aiomqtt.Client:
        if self._client is None:
            raise RuntimeError("use 'async with Attacker(...)'")
        return self._client

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        await self.client.publish(topic, payload, qos=qos)
        self.published += 1

    async def capture(
        self,
        topic_filter: str,
        count: int,
        timeout_s: float = 5.0,
        keep: Callable[[str, bytes], bool] | None = None,
    ) -> list[Captured]:
        """Record the next ``count`` messages on ``topic_filter`` (fewer after ``timeout_s``)."""
        got: list[Captured] = []
        await self.client.subscribe(topic_filter, qos=1)
        try:
            async with asyncio.timeout(timeout_s):
                async for message in self.client.messages:
                    if not message.topic.matches(topic_filter):
                        continue
                    payload = message.payload
                    if not isinstance(payload, bytes | bytearray):
                        continue
                    if keep is None or keep(message.topic.value, bytes(payload)):
                        got.append((message.topic.value, bytes(payload)))
                    if len(got) >= count:
                        break
        except TimeoutError:
            pass
        finally:
            await self.client.unsubscribe(topic_filter)
        return got

    async def relay(
        self,
        topic_filter: str,
        modify: Callable[[str, bytes], Captured | None],
        duration_s: float,
        via: Attacker | None = None,
    ) -> tuple[int, int]:
        """Man in the middle on a pub/sub bus: republish a modified copy of each message.

        ``modify`` returns (topic, payload) to publish, or None to let one pass
        untouched. Our own republications are recognised and not modified
        twice. ``via``: publish through another client (other broker credentials:
        who may read a topic is rarely who may write it). Returns (seen, published).
        """
        out_client = via or self
        ours: set[bytes] = set()
        seen = sent = 0
        await self.client.subscribe(topic_filter, qos=1)
        try:
            async with asyncio.timeout(duration_s):
                async for message in self.client.messages:
                    payload = message.payload
                    if not isinstance(payload, bytes | bytearray) or bytes(payload) in ours:
                        continue
                    seen += 1
                    out = modify(message.topic.value, bytes(payload))
                    if out is not None:
                        ours.add(out[1])
                        await out_client.publish(*out)
                        sent += 1
        except TimeoutError:
            pass
        finally:
            await self.client.unsubscribe(topic_filter)
        return seen, sent
