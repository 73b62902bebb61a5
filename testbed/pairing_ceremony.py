"""The verification officer's side of pairing (P8/U8): authorize, watch, report.

The officer's tool holds the verification authority's key (provisioned in
DIR); it signs a single-use authorization for one sensor of one instrument
and hands it to the running mother unit as an ``authorize_pairing`` command.
The mother unit does the rest with the sensor and answers with the
comparison code, which the operator checks against the sensor's log/display.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_module.pairing import issue_authorization
from security_module.provisioning import MOTHER_UNIT, Provisioned
from testbed.broker_config import OFFICER, tool_address
from wire.client import NODELAY
from wire.codec import RejectedPayload, decode, encode
from wire.messages import Command, CommandReply, ComponentStatus
from wire.settings import BrokerAddress
from wire.topics import Topics


@dataclass(frozen=True)
class CeremonyResult:
    ok: bool
    sensor_id: str
    message: str
    comparison_code: str = ""
    key_id: str = ""


async def run_ceremony(
    dir: Path,
    broker: BrokerAddress,
    sensor_id: str,
    *,
    command: str = "authorize_pairing",
    reason: str = "re-verification",
    timeout_s: float = 20.0,
) -> CeremonyResult:
    """Authorize pairing (or un-pairing) of ``sensor_id`` and wait for the outcome."""
    material = Provisioned(dir)
    topics = Topics(material.instrument_id)
    # Issue 10: the officer's own broker user may send commands and read their replies.
    broker = tool_address(dir, broker, OFFICER)
    request = _authorizing_command(
        material, va_key=material.verification_authority_key(), sensor_id=sensor_id,
        command=command, reason=reason, timeout_s=timeout_s,
    )
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=f"officer-{request.command_id[:8]}",
        socket_options=NODELAY,
    ) as client:
        await client.subscribe(topics.command_reply, qos=1)
        # A command is not retained: sent before the mother unit subscribed (it may still
        # be starting), it would be lost. Its retained status says online once it listens.
        await client.subscribe(topics.status(MOTHER_UNIT), qos=1)
        sent = False
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    if _says_online(message, topics):
                        if not sent:
                            await client.publish(topics.command, encode(request), qos=1)
                            sent = True
                        continue
                    try:
                        reply = decode(CommandReply, payload, message.topic.value)
                    except RejectedPayload:
                        continue
                    if reply.command_id != request.command_id:
                        continue
                    if (
                        not reply.ok
                        or command != "authorize_pairing"
                        or not reply.data.get("pending")
                    ):
                        return _outcome(sensor_id, reply)
        except TimeoutError:
            if not sent:
                return CeremonyResult(
                    False, sensor_id, f"the mother unit was not online within {timeout_s:.0f} s"
                )
            return CeremonyResult(
                False, sensor_id, f"no answer within {timeout_s:.0f} s: is {sensor_id} running?"
            )
    return CeremonyResult(False, sensor_id, "connection closed")


def _authorizing_command(
    material: Provisioned,
    *,
    va_key: Ed25519PrivateKey,
    sensor_id: str,
    command: str,
    reason: str,
    timeout_s: float,
) -> Command:
    """The officer's command carrying a fresh single-use authorization for ``sensor_id``."""
    authorization = issue_authorization(
        va_key,
        instrument_id=material.instrument_id,
        sensor_id=sensor_id,
        ttl=dt.timedelta(seconds=max(timeout_s, 30.0)),
    )
    return Command(
        command_id=uuid.uuid4().hex,
        name=command,
        issuer="verification-officer",
        args={"authorization": authorization.model_dump_json(), "reason": reason},
    )


def _outcome(sensor_id: str, reply: CommandReply) -> CeremonyResult:
    return CeremonyResult(
        reply.ok,
        sensor_id,
        reply.message,
        str(reply.data.get("comparison_code", "")),
        str(reply.data.get("key_id", "")),
    )


def _status_seen(message: aiomqtt.Message, topics: Topics, online: asyncio.Event) -> bool:
    """Whether ``message`` is the mother unit's status; sets ``online`` when it says so."""
    if not message.topic.matches(topics.status(MOTHER_UNIT)):
        return False
    if _says_online(message, topics):
        online.set()
    return True


def _says_online(message: aiomqtt.Message, topics: Topics) -> bool:
    """The mother unit's retained status says it is online, so it listens for commands."""
    if not message.topic.matches(topics.status(MOTHER_UNIT)):
        return False
    payload = message.payload if isinstance(message.payload, bytes) else b""
    try:
        return decode(ComponentStatus, payload, message.topic.value).online
    except RejectedPayload:
        return False


async def run_ceremonies(
    dir: Path,
    broker: BrokerAddress,
    sensor_ids: list[str],
    *,
    concurrency: int = 16,
    rate_per_s: float = 8.0,
    reason: str = "initial verification",
    timeout_s: float = 60.0,
) -> list[CeremonyResult]:
    """Bulk mode of the officer's tool: pair many sensors over one connection.

    Every sensor still gets its own single-use authorization signed by the
    verification authority and its own full ceremony; only the officer's side is
    shared (one key load, one MQTT connection) and up to ``concurrency``
    ceremonies are open at once. Authorizations go out at most ``rate_per_s`` a
    second: the mother unit refuses commands beyond its rate limit (A_WEB_DOS), and
    a refused command gets no reply. Results come back in the order of ``sensor_ids``.
    """
    material = Provisioned(dir)
    topics = Topics(material.instrument_id)
    # Issue 10: the officer's own broker user may send commands and read their replies.
    broker = tool_address(dir, broker, OFFICER)
    va_key = material.verification_authority_key()
    results: dict[str, CeremonyResult] = {}
    waiting: dict[str, tuple[str, asyncio.Future[CommandReply]]] = {}
    slots = asyncio.Semaphore(concurrency)

    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=f"officer-bulk-{uuid.uuid4().hex[:8]}",
        socket_options=NODELAY,
    ) as client:
        client.pending_calls_threshold = concurrency + 10  # bounded by ``slots``
        await client.subscribe([(topics.command_reply, 1), (topics.status(MOTHER_UNIT), 1)])
        mother_unit_online = asyncio.Event()  # commands sent before it listens are lost
        pace = asyncio.Lock()

        async def replies() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                if _status_seen(message, topics, mother_unit_online):
                    continue
                try:
                    reply = decode(CommandReply, payload, message.topic.value)
                except RejectedPayload:
                    continue
                entry = waiting.get(reply.command_id)
                if entry is None:
                    continue
                # "pending" acknowledges the authorization; the outcome follows.
                if (not reply.ok or not reply.data.get("pending")) and not entry[1].done():
                    entry[1].set_result(reply)

        async def one(sensor_id: str) -> None:
            async with slots:
                async with pace:  # one command per 1/rate_per_s, in order
                    await asyncio.sleep(1.0 / rate_per_s)
                request = _authorizing_command(
                    material, va_key=va_key, sensor_id=sensor_id, command="authorize_pairing",
                    reason=reason, timeout_s=timeout_s,
                )
                done: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
                waiting[request.command_id] = (sensor_id, done)
                await client.publish(topics.command, encode(request), qos=1)
                try:
                    async with asyncio.timeout(timeout_s):
                        reply = await done
                except TimeoutError:
                    results[sensor_id] = CeremonyResult(
                        False, sensor_id, f"no answer within {timeout_s:.0f} s"
                    )
                    return
                finally:
                    waiting.pop(request.command_id, None)
                results[sensor_id] = _outcome(sensor_id, reply)

        async with asyncio.TaskGroup() as tg:
            listener = tg.create_task(replies(), name="officer-replies")
            with contextlib.suppress(TimeoutError):  # then each ceremony times out by itself
                await asyncio.wait_for(mother_unit_online.wait(), timeout_s)
            async with asyncio.TaskGroup() as ceremonies:
                for sensor_id in sensor_ids:
                    ceremonies.create_task(one(sensor_id), name=f"ceremony-{sensor_id}")
            listener.cancel()
    return [results[s] for s in sensor_ids]
