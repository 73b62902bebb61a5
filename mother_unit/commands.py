"""The command interface of the mother unit: one topic, a closed list of commands.

Every command names itself; only commands registered here are executed, and
anything else is refused, counted and logged (A_SW_RUNTIME_INTERFACE). A
command that changes anything legally relevant must carry its own proof of
authority (for pairing: a token signed by the verification authority), so the
channel itself needs no trust.

The protective software interface (WELMEC 7.2 extension S, 7.3 §4.3): legally
non-relevant software — the remote portal — may send only the commands listed
in :data:`NON_RELEVANT_COMMANDS`, each signed with its own provisioned identity
(role ``remote_portal``). The mother unit checks the name against that list and
the signature against the portal's certificate; a command of that identity
outside the list is refused and logged even if a handler for it exists, and a
listed command without a valid portal signature is refused too. No command on
the list changes anything legally relevant (docs/portal.md).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Mapping

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mother_unit.core import Core
from mother_unit.evidence import Evidence
from security_module.errors import SecurityError
from security_module.provisioning import Provisioned
from security_module.signing import verify
from wire.client import LinkDown
from wire.codec import RejectedPayload, decode
from wire.messages import NON_RELEVANT_COMMAND_CONTEXT, Command, CommandReply

log = structlog.get_logger()

CommandHandler = Callable[[Command], Awaitable[CommandReply]]

# S: the documented list of the protective interface - what legally non-relevant
# software may ask. Each is read-only or touches only non-relevant settings.
NON_RELEVANT_COMMANDS: Mapping[str, str] = {
    "get_twin": "the mother unit's part of the digital twin: pairings (public fields), "
    "parameters in use, software identifiers, logbook head, event counter",
    "get_logbook_excerpt": "the newest logbook entries below a tree size, each with its "
    "RFC 9162 inclusion proof (args: tree_size, count <= 20)",
    "set_display_language": "language of the portal's texts (args: language); "
    "no effect on the indication or any legally relevant function",
}
NON_RELEVANT_ROLE = "remote_portal"

# A_WEB_DOS: commands are cheap but not free (a refusal is an fsync'd logbook entry);
# past this budget they are only counted, and summarised in the logbook (T6).
COMMAND_RATE_PER_S = 10.0
COMMAND_BURST = 20.0
_ARG_TEXT_MAX = 200  # logged arguments: what was attempted, bounded


class _Budget:
    """Token bucket over all commands."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def non_relevant_issuers(material: Provisioned) -> dict[str, Ed25519PublicKey]:
    """Every provisioned device of role ``remote_portal``: its key, certificate checked (CA)."""
    return material.public_keys(NON_RELEVANT_ROLE)


def _logged_args(command: Command) -> dict[str, str]:
    # A pairing authorization is a bearer token until used: never copy it into the logbook.
    return {
        k[:64]: "(withheld)" if k == "authorization" else str(v)[:_ARG_TEXT_MAX]
        for k, v in list(command.args.items())[:8]
    }


class Commands:
    def __init__(
        self,
        core: Core,
        evidence: Evidence,
        non_relevant_issuers: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> None:
        self.core = core
        self.evidence = evidence
        self.handlers: dict[str, CommandHandler] = {}
        self.non_relevant: dict[str, CommandHandler] = {}
        # device id -> public key from its certificate (role remote_portal, checked on load)
        self.non_relevant_issuers = dict(non_relevant_issuers or {})
        self.budget = _Budget(COMMAND_RATE_PER_S, COMMAND_BURST)
        core.link.route(core.topics.command, self.on_command)

    def register(self, name: str, handler: CommandHandler) -> None:
        self.handlers[name] = handler

    def register_non_relevant(self, name: str, handler: CommandHandler) -> None:
        """A handler for a command of the documented list (S); nothing else may be added."""
        if name not in NON_RELEVANT_COMMANDS:
            raise ValueError(f"{name!r} is not in the protective interface's documented list")
        self.non_relevant[name] = handler

    async def reply(self, reply: CommandReply) -> None:
        try:
            await self.core.link.publish(self.core.topics.command_reply, reply)
        except LinkDown:
            log.warning("command_reply_lost", command_id=reply.command_id)

    def _signed_by_issuer(self, command: Command) -> bool:
        key = self.non_relevant_issuers.get(command.issuer)
        if key is None or not command.signature:
            return False
        try:
            signature = base64.b64decode(command.signature, validate=True)
            verify(command, signature, key, NON_RELEVANT_COMMAND_CONTEXT,
                   exclude={"signature"}, signer=command.issuer)
        except (SecurityError, binascii.Error):
            return False
        return True

    async def refuse(self, command: Command, reason: str, counter: str) -> None:
        """Refused, counted and logged (A_SW_RUNTIME_INTERFACE); nothing else happens."""
        self.core.reject(counter, command=command.name, issuer=command.issuer)
        self.evidence.record(
            "command_refused",
            {
                "command": command.name,
                "command_id": command.command_id,
                "issuer": command.issuer,
                "reason": reason,
                "args": _logged_args(command),
            },
            intervention=False,
        )
        await self.reply(CommandReply(command_id=command.command_id, ok=False, message=reason))

    async def on_command(self, topic: str, payload: bytes) -> None:
        try:
            command = decode(Command, payload, topic)
        except RejectedPayload as e:
            self.core.reject(e.reason, topic=topic, link="command")
            return
        if not self.budget.take():
            self.core.reject("command_rate", command=command.name, issuer=command.issuer)
            return
        if command.name in NON_RELEVANT_COMMANDS:
            # S: only a signed command of a provisioned non-relevant identity.
            handler = self.non_relevant.get(command.name)
            if handler is None or not self._signed_by_issuer(command):
                await self.refuse(
                    command, "non-relevant command without a valid portal signature",
                    "command_unauthenticated",
                )
                return
            await self.reply(await handler(command))
            return
        if command.issuer in self.non_relevant_issuers:
            # S: the portal's identity may use the documented list only, whatever it carries.
            await self.refuse(
                command, "not in the protective interface's list of non-relevant commands",
                "command_not_allowed",
            )
            return
        handler = self.handlers.get(command.name)
        if handler is None:
            await self.refuse(command, "not an allowed command", "unknown_command")
            return
        reply = await handler(command)
        if not reply.ok:
            # A legally relevant command its handler refused (no valid authority): evidence too.
            self.evidence.record(
                "command_refused",
                {
                    "command": command.name,
                    "command_id": command.command_id,
                    "issuer": command.issuer,
                    "reason": reply.message[:_ARG_TEXT_MAX],
                    "args": _logged_args(command),
                },
                intervention=False,
            )
        await self.reply(reply)
