"""Helpers of the portal tests: addresses, MQTT as a given user, the logbook on disk."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_module.signing import sign
from testbed.broker_config import tool_address
from testbed.testing import TestbedRun
from wire.client import NODELAY
from wire.codec import RejectedPayload, decode, encode
from wire.messages import NON_RELEVANT_COMMAND_CONTEXT, Command, CommandReply
from wire.settings import BrokerAddress


def portal_url(run: TestbedRun) -> str:
    state = run.supervisor_state()
    assert state is not None
    url = state.get("portal")
    assert isinstance(url, str), f"the supervisor names no portal: {state}"
    return url


def address_of(run: TestbedRun, user: str) -> BrokerAddress:
    """The run's broker with ``user``'s provisioned MQTT password (issue 10)."""
    address = tool_address(run.dir, run.plain_broker_address, user)
    assert address.password, f"no MQTT password for {user} in {run.dir}"
    return address


def client_for(address: BrokerAddress, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=f"{name}-{secrets.token_hex(4)}",
        socket_options=NODELAY,
        timeout=10,
    )


def command(
    name: str,
    *,
    issuer: str,
    key: Ed25519PrivateKey | None = None,
    args: Mapping[str, str | int | float | bool] | None = None,
) -> Command:
    """A command; signed in the non-relevant context when ``key`` is given."""
    unsigned = Command(
        command_id=f"t-{secrets.token_hex(6)}", name=name, issuer=issuer, args=dict(args or {})
    )
    if key is None:
        return unsigned
    signature = sign(unsigned, key, NON_RELEVANT_COMMAND_CONTEXT, exclude={"signature"})
    return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode()})


async def send_commands(
    run: TestbedRun,
    user: str,
    commands: Sequence[Command],
    timeout_s: float = 10.0,
    pace_s: float = 0.11,
) -> dict[str, CommandReply]:
    """Publish ``commands`` as MQTT user ``user``; the mother unit's reply to each.

    Paced below the mother unit's command budget (10/s, mother_unit.commands), so
    that each is handled and logged rather than counted as a flood.
    """
    replies: dict[str, CommandReply] = {}
    wanted = {c.command_id for c in commands}
    async with client_for(address_of(run, user), user) as client:
        await client.subscribe(run.topics.command_reply, qos=1)
        for c in commands:
            await client.publish(run.topics.command, encode(c), qos=1)
            await asyncio.sleep(pace_s)
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    try:
                        reply = decode(CommandReply, payload, message.topic.value)
                    except RejectedPayload:
                        continue
                    if reply.command_id in wanted:
                        replies[reply.command_id] = reply
                    if wanted <= replies.keys():
                        break
        except TimeoutError:
            pass
    return replies


def logbook_entries(run: TestbedRun) -> list[dict[str, Any]]:
    path = run.dir / "mother-unit" / "logbook.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
