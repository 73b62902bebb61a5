"""The portal's side of the protective software interface (S; WELMEC 7.3 §4.3).

The portal may send the mother unit only the non-relevant commands the interface
documents (docs/portal.md; the mother unit's list is authoritative and checks
again). Each command is signed with the portal's own provisioned identity (role
``remote_portal``). The portal holds no other key: not the verification
authority's, which pairing needs, nor any that could sign a parameter change,
so even a compromised portal cannot produce a legally relevant command.

Request/response: the correlation id is the command id; the mother unit answers
on ``mother/command/reply`` (shared by all operators, so unknown ids are ignored).
At most :data:`MAX_PENDING` requests wait at once (A_WEB_DOS: bounded).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Mapping

from security_module.identity import DeviceIdentity
from security_module.signing import sign
from wire.client import LinkDown, MqttLink
from wire.codec import RejectedPayload, decode
from wire.messages import NON_RELEVANT_COMMAND_CONTEXT, Command, CommandReply

# The portal's copy of the documented list; a test checks it against the mother unit's.
PORTAL_COMMANDS = ("get_twin", "get_logbook_excerpt", "set_display_language")
MAX_PENDING = 16
REPLY_TIMEOUT_S = 3.0

Arg = str | int | float | bool


class NotInInterface(Exception):
    """The portal was asked to send a command outside the protective interface's list."""


class InterfaceBusy(Exception):
    """Too many requests are already waiting for an answer."""


class PortalCommands:
    def __init__(self, link: MqttLink, identity: DeviceIdentity) -> None:
        self.link = link
        self.identity = identity
        self.pending: dict[str, asyncio.Future[CommandReply]] = {}
        self.sent = 0
        link.route(link.topics.command_reply, self.on_reply, qos=0)

    def command(self, name: str, args: Mapping[str, Arg] | None = None) -> Command:
        """A signed command of the documented list; anything else raises NotInInterface."""
        if name not in PORTAL_COMMANDS:
            raise NotInInterface(name)
        unsigned = Command(
            command_id=f"portal-{secrets.token_hex(8)}",
            name=name,
            issuer=self.identity.device_id,
            args=dict(args or {}),
        )
        signature = sign(
            unsigned, self.identity.private_key, NON_RELEVANT_COMMAND_CONTEXT,
            exclude={"signature"},
        )
        return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode()})

    async def request(
        self, name: str, args: Mapping[str, Arg] | None = None, timeout_s: float = REPLY_TIMEOUT_S
    ) -> CommandReply | None:
        """Send and wait for the answer; None if none came in time or the link is down."""
        if len(self.pending) >= MAX_PENDING:
            raise InterfaceBusy(name)
        command = self.command(name, args)
        future: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self.pending[command.command_id] = future
        try:
            await self.link.publish(self.link.topics.command, command)
            self.sent += 1
            async with asyncio.timeout(timeout_s):
                return await future
        except (LinkDown, TimeoutError):
            return None
        finally:
            self.pending.pop(command.command_id, None)

    async def on_reply(self, topic: str, payload: bytes) -> None:
        try:
            reply = decode(CommandReply, payload, topic)
        except RejectedPayload as e:
            self.link.counters[f"rejected.{e.reason}"] += 1
            return
        future = self.pending.get(reply.command_id)
        if future is not None and not future.done():
            future.set_result(reply)
