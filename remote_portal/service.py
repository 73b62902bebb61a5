"""The portal process: one MQTT link, one HTTP server, one poller, in one TaskGroup.

WELMEC 7.3 §4.3: legally non-relevant software, run remotely, separate from the
legally relevant path by process boundaries and by the mother unit's protective
interface. It must never slow that path (A_WEB_DOS):

- its MQTT subscription is passive: QoS 0, a clean session (the broker keeps no
  backlog for it), only retained/low-rate topics (status, state, indication,
  checkpoint, command replies), never the sensor or storage data;
- what it asks the mother unit is paced (one excerpt per new checkpoint at most
  every ``poll_s``, the twin every ``twin_every_s``) and bounded (``MAX_PENDING``);
- the web side answers floods with 429 before doing work (``ratelimit``), and
  the process runs at a lower CPU priority (``nice``) than the instrument.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import structlog
import uvicorn

from remote_portal.interface import InterfaceBusy, PortalCommands
from remote_portal.logbook_check import check_excerpt
from remote_portal.twin import TwinType, build_twin
from remote_portal.view import InstrumentView
from remote_portal.web import PortalWeb
from security_module.identity import DeviceIdentity
from wire.client import MqttLink
from wire.messages import CommandReply

log = structlog.get_logger()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the process's TaskGroup decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Portal:
    link: MqttLink
    view: InstrumentView
    identity: DeviceIdentity
    static: TwinType
    host: str
    port: int
    poll_s: float = 1.0
    twin_every_s: float = 5.0

    def __post_init__(self) -> None:
        self.commands = PortalCommands(self.link, self.identity)
        self.web = PortalWeb(self.view, self.twin, self.set_language)
        for topic in (
            self.link.topics.status_all,
            self.link.topics.state,
            self.link.topics.indication,
            self.link.topics.checkpoint,
        ):
            self.link.route(topic, self._feed, qos=0)
        self.link.detail.update(url=self.url, legally_relevant=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def _feed(self, topic: str, payload: bytes) -> None:
        self.view.feed(topic, payload)

    def twin(self) -> dict[str, object]:
        return build_twin(self.static, self.view)

    async def set_language(self, language: str) -> CommandReply | None:
        try:
            return await self.commands.request("set_display_language", {"language": language})
        except InterfaceBusy:
            return None

    async def poll(self) -> None:
        """Ask the mother unit for the logbook excerpt and its part of the twin, paced."""
        excerpt_for = -1
        twin_at = 0.0
        while True:
            await asyncio.sleep(self.poll_s)
            self.view.set_connected(self.link.connected.is_set())
            self.link.detail.update(
                http_allowed=self.web.limiter.allowed, http_limited=self.web.limiter.limited
            )
            if not self.link.connected.is_set():
                continue
            checkpoint = self.view.checkpoint
            try:
                if checkpoint is not None and checkpoint.size != excerpt_for:
                    reply = await self.commands.request(
                        "get_logbook_excerpt", {"tree_size": checkpoint.size, "count": 20}
                    )
                    if reply is not None and reply.ok:
                        self.view.set_excerpt(check_excerpt(checkpoint, reply.data))
                        excerpt_for = checkpoint.size
                if time.monotonic() - twin_at >= self.twin_every_s:
                    reply = await self.commands.request("get_twin")
                    if reply is not None and reply.ok:
                        self.view.set_mother_twin(dict(reply.data))
                        twin_at = time.monotonic()
            except InterfaceBusy:
                continue

    async def serve_http(self) -> None:
        config = uvicorn.Config(
            self.web.app(),
            host=self.host,
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            loop="asyncio",
            # A_WEB_DOS: bounded connections and keep-alive; a slow client cannot hold many.
            limit_concurrency=128,
            backlog=256,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=1,
            h11_max_incomplete_event_size=16 * 1024,
        )
        server = _Server(config)
        serving = asyncio.ensure_future(server.serve())
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            self.web.closing.set()
            server.should_exit = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await serving
            raise

    async def run(self) -> None:
        log.info("portal_starting", url=self.url)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.link.run(), name="link")
            tg.create_task(self.serve_http(), name="http")
            tg.create_task(self.poll(), name="poll")


def portal_software_dir() -> Path:
    return Path(__file__).resolve().parent
