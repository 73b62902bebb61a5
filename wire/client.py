"""One small MQTT client wrapper on aiomqtt, used by every process.

What it adds to aiomqtt, and why:
- TCP_NODELAY on the socket: without it a QoS 1 round trip costs ~88 ms
  (Nagle + delayed ACK) instead of ~0.7 ms (ARCHITECTURE.md §10).
- A retained ``online`` status with a Last Will that sets it ``offline`` (T8).
- Connect with retry and exponential backoff, so a component started before
  the broker, or one whose broker restarts, comes back by itself.
- Typed dispatch: handlers are registered per topic filter and get the raw
  payload; a handler that raises is logged and counted, never kills the loop.
- A persistent session (fixed client id, clean_session false) with QoS 1
  subscriptions, so the broker keeps messages while a component reconnects.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import structlog
from pydantic import BaseModel

from wire.codec import encode
from wire.messages import ComponentKind, ComponentStatus
from wire.settings import BrokerAddress
from wire.topics import Topics

log = structlog.get_logger()

Handler = Callable[[str, bytes], Awaitable[None]]

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
# Bound the QoS 1 messages in flight: past paho's limit publishes are refused
# with a return code that is easy to ignore (ARCHITECTURE.md §10).
MAX_INFLIGHT = 1000
# Topics whose route was looked up: aiomqtt's Topic.matches parses the filter on every
# call (~6 % of the mother unit's CPU at saturation, docs/performance.md). The set of
# topics is small (a few per component); the bound only guards against a topic flood.
ROUTE_CACHE_MAX = 10_000
# Replies handed to the broker by publish_soon whose PUBACK is still awaited.
MAX_SOON = 256


class LinkDown(Exception):
    """The broker connection was lost; the caller reconnects."""


@dataclass
class MqttLink:
    """A connected component: publish models, dispatch subscriptions, announce status."""

    broker: BrokerAddress
    client_id: str
    topics: Topics
    component: ComponentKind
    software_id: str | None = None
    heartbeat_s: float = 1.0
    clean_session: bool = False
    counters: Counter[str] = field(default_factory=Counter)
    detail: dict[str, str | int | float | bool | None] = field(default_factory=dict)
    _routes: list[tuple[str, int, Handler]] = field(default_factory=list)
    _route_cache: dict[str, Handler | None] = field(default_factory=dict)
    _client: aiomqtt.Client | None = None
    _session_tasks: asyncio.TaskGroup | None = None  # publish_soon's PUBACK waits live here
    _soon: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_SOON))
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def route(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Call ``handler(topic, payload)`` for every message matching ``topic_filter``."""
        self._routes.append((topic_filter, qos, handler))
        self._route_cache.clear()

    def handler_for(self, topic: aiomqtt.Topic) -> Handler | None:
        """The handler of the first route whose filter matches ``topic`` (None: no route)."""
        cache = self._route_cache
        name = topic.value
        if name in cache:
            return cache[name]
        handler = next((h for f, _, h in self._routes if topic.matches(f)), None)
        if len(cache) >= ROUTE_CACHE_MAX:
            cache.clear()
        cache[name] = handler
        return handler

    def status(self, *, online: bool) -> ComponentStatus:
        return ComponentStatus(
            component=self.component,
            component_id=self.client_id,
            online=online,
            time=time.time(),
            pid=os.getpid(),
            software_id=self.software_id,
            heartbeat_s=self.heartbeat_s,
            counters=dict(self.counters),
            detail=dict(self.detail),
        )

    async def publish(
        self, topic: str, message: BaseModel | bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1)."""
        client = self._client
        if client is None:
            raise LinkDown("not connected")
        payload = message if isinstance(message, bytes) else encode(message)
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as e:
            raise LinkDown(str(e)) from e

    async def publish_soon(
        self, topic: str, message: BaseModel | bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish without holding up the caller until the broker's PUBACK.

        For a handler that answers a message (a store's ack, a processing result): the
        message goes out in order with the other ``publish_soon`` messages while the
        dispatch loop takes the next one; a task of the connection's task group waits
        for the PUBACK, and a failure there ends the connection like any lost link
        (the asker resends on its timeout). At most ``MAX_SOON`` wait at once.
        """
        tasks = self._session_tasks
        if tasks is None:
            await self.publish(topic, message, qos=qos, retain=retain)
            return
        await self._soon.acquire()
        try:
            tasks.create_task(self._publish_released(topic, message, qos, retain),
                              name="publish-soon")
        except RuntimeError:  # the task group is shutting down: the link is going down
            self._soon.release()
            raise LinkDown("connection closing") from None

    async def _publish_released(
        self, topic: str, message: BaseModel | bytes, qos: int, retain: bool
    ) -> None:
        try:
            await self.publish(topic, message, qos=qos, retain=retain)
        finally:
            self._soon.release()

    async def run(
        self, on_connected: Callable[[], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        """Stay connected forever: connect, subscribe, dispatch; back off and retry on loss."""
        backoff = 0.1
        while True:
            try:
                await self._session(on_connected)
                backoff = 0.1
            except (aiomqtt.MqttError, LinkDown, OSError) as e:
                self.connected.clear()
                self.counters["reconnects"] += 1
                log.warning("broker_unreachable", error=str(e), retry_in_s=round(backoff, 2))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _session(self, on_connected: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
        will = aiomqtt.Will(
            self.topics.status(self.client_id),
            encode(self.status(online=False)),
            qos=1,
            retain=True,
        )
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
            identifier=self.client_id,
            clean_session=self.clean_session,
            will=will,
            keepalive=max(2, int(self.heartbeat_s * 3)),
            socket_options=NODELAY,
            max_inflight_messages=MAX_INFLIGHT,
            timeout=10,
        )
        async with client:
            self._client = client
            try:
                for topic_filter, qos, _ in self._routes:
                    await client.subscribe(topic_filter, qos=qos)
                await self.publish(
                    self.topics.status(self.client_id), self.status(online=True), retain=True
                )
                self.connected.set()
                log.info("connected", broker=self.broker.url(), client_id=self.client_id)
                try:
                    async with asyncio.TaskGroup() as tg:
                        self._session_tasks = tg
                        if on_connected is not None:
                            tg.create_task(on_connected(), name="on_connected")
                        tg.create_task(self._heartbeat(), name="heartbeat")
                        tg.create_task(self._dispatch(client), name="dispatch")
                except asyncio.CancelledError:
                    # Clean stop: the Last Will is not sent on DISCONNECT, so say it ourselves.
                    await self._announce_offline()
                    raise
            except* (aiomqtt.MqttError, LinkDown) as eg:
                raise LinkDown(str(eg.exceptions[0])) from eg
            finally:
                self.connected.clear()
                self._client = None
                self._session_tasks = None

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.publish(
                self.topics.status(self.client_id), self.status(online=True), retain=True
            )

    async def _dispatch(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
            handler = self.handler_for(message.topic)
            if handler is None:
                continue
            try:
                await handler(topic, bytes(payload))
            except (LinkDown, aiomqtt.MqttError):
                raise
            except Exception as e:  # a bug in one handler must not stop the instrument
                self.counters["handler_errors"] += 1
                log.exception("handler_failed", topic=topic, error=repr(e))

    async def _announce_offline(self) -> None:
        try:
            async with asyncio.timeout(2):
                await self.publish(
                    self.topics.status(self.client_id), self.status(online=False), retain=True
                )
        except (LinkDown, TimeoutError):
            log.warning("offline_status_not_sent")
