"""The pairing ceremony over MQTT, mother-unit side (P8/U8, WELMEC 7.3 §4.1).

    officer --authorize_pairing(token signed by the verification authority)--> mother unit
    mother unit --request--> sensor          (asks an already paired sensor to start)
    sensor --hello--> mother unit --response--> sensor --confirm--> mother unit
    mother unit --result--> sensor; --CommandReply(comparison code)--> officer

The protocol itself is the security module's sans-io state machine; this
module moves its messages and decides what the instrument does about them.
A genuine sensor (valid manufacturer certificate) that says hello without an
open authorization is a *similar unit*: the instrument is INHIBITED and stays
so until an authorized pairing (4.1: "the measuring instrument should not
function").
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from mother_unit.commands import Commands
from mother_unit.core import Core
from mother_unit.evidence import Evidence
from security_module.errors import SecurityError
from security_module.identity import DeviceIdentity, certificate_from_pem, verify_device_certificate
from security_module.pairing import (
    MotherUnitPairing,
    PairingAuthorization,
    PairingConfirm,
    PairingHello,
    check_authorization,
)
from security_module.pairing_store import PairingRecord, PairingStore
from security_module.signing import CONTEXT_PAIRING_HELLO, verify
from wire.client import LinkDown
from wire.codec import RejectedPayload, decode
from wire.messages import Command, CommandReply, PairingMessage

log = structlog.get_logger()

_HELLO_SIGNED_EXCLUDE = {"signature", "confirmation"}
CONSUMED_HELLOS_KEPT = 1024


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class AuthorizationLockout:
    """A_PASSWORD: repeated refused authorizations close the pairing interface, growingly.

    After ``max_failures`` refused authorizations (bad signature, expired, reused,
    other instrument...) every authorization - valid ones too - is refused for
    ``base_s``, then twice as long after the next ``max_failures``, and so on up to
    ``max_s``; ``forget_after_s`` without a refusal resets it. Failures are counted
    for the interface as a whole, not per sender: the command topic does not tell the
    mother unit who published (MQTT 3.1.1) and ``issuer`` is the sender's own claim,
    so a guesser could escape a per-name count by changing its name. Locking out the
    officer too is the price: pairing is rare, measuring goes on meanwhile.
    Sans-io: ``clock`` is injectable (docs/adr/0050-pairing-authorization-lockout.md).
    """

    max_failures: int = 3
    base_s: float = 2.0
    max_s: float = 300.0
    forget_after_s: float = 600.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    level: int = 0  # lockouts so far; the next one lasts base_s * 2**level
    until: float = 0.0
    last_failure: float = float("-inf")

    def locked_for(self) -> float:
        """Seconds the interface stays locked (0: open)."""
        return max(0.0, self.until - self.clock())

    def failed(self) -> float | None:
        """Count a refused authorization; the lockout's length if this one starts it."""
        now = self.clock()
        if now - self.last_failure > self.forget_after_s:
            self.failures, self.level = 0, 0
        self.last_failure = now
        self.failures += 1
        if self.failures < self.max_failures:
            return None
        seconds: float = min(self.max_s, self.base_s * 2.0**self.level)
        self.level += 1
        self.failures = 0
        self.until = now + seconds
        return seconds

    def succeeded(self) -> None:
        """A valid authorization: the failures before it no longer count (the level stays)."""
        self.failures = 0


@dataclass
class _Open:
    authorization: PairingAuthorization
    command_id: str
    reason: str
    session: MotherUnitPairing | None = None


class PairingLink:
    def __init__(
        self,
        core: Core,
        evidence: Evidence,
        commands: Commands,
        *,
        identity: DeviceIdentity,
        va_public_key: Ed25519PublicKey,
        approved_sensor_ids: list[str],
        store: PairingStore,
        on_paired: Callable[[PairingRecord], None],
        on_unpaired: Callable[[str], None],
        lockout: AuthorizationLockout | None = None,
    ) -> None:
        self.core = core
        self.evidence = evidence
        self.commands = commands
        self.identity = identity
        self.ca: x509.Certificate = identity.ca_certificate
        self.va_public_key = va_public_key
        self.approved = approved_sensor_ids
        self.store = store
        self.on_paired = on_paired
        self.on_unpaired = on_unpaired
        self.open: dict[str, _Open] = {}
        self._reported: set[str] = set()  # similar units already in the logbook this episode
        self.lockout = lockout or AuthorizationLockout()
        # Nonces of hellos consumed by authorized ceremonies since start (replay check).
        self._consumed_hellos: OrderedDict[bytes, None] = OrderedDict()
        core.link.route(core.topics.sensor_pairing_all, self.on_sensor_message)
        commands.register("authorize_pairing", self.authorize)
        commands.register("unpair", self.unpair)

    # -- the officer's side ----------------------------------------------------------------

    def _authorization(self, command: Command) -> PairingAuthorization:
        raw = command.args.get("authorization")
        if not isinstance(raw, str):
            raise RejectedPayload("schema", "command", "authorization missing")
        try:
            return PairingAuthorization.model_validate_json(raw)
        except ValidationError as e:
            raise RejectedPayload("schema", "command", "authorization does not parse") from e

    def _check(self, auth: PairingAuthorization) -> None:
        check_authorization(
            auth,
            self.va_public_key,
            instrument_id=self.core.topics.instrument,
            sensor_id=auth.sensor_id,
            now=_now(),
            used=self.store.used_authorizations(),
        )

    def _admit(self, command: Command) -> PairingAuthorization | CommandReply:
        """The command's authorization if it may act now, else the refusal to send back.

        A_PASSWORD: while the interface is locked out every authorization is refused
        unchecked (valid ones too) and only counted; a checked refusal is logged, and
        the one that starts a lockout is logged as such - at most ``max_failures``
        entries per lockout, so guessing cannot fill the logbook (A_WEB_DOS).
        """
        wait_s = self.lockout.locked_for()
        if wait_s > 0:
            self.core.reject("pairing_locked", command_id=command.command_id)
            return CommandReply(
                command_id=command.command_id,
                ok=False,
                message=f"authorization refused: locked out after repeated refusals, "
                f"retry in {wait_s:.1f} s",
            )
        try:
            auth = self._authorization(command)
            self._check(auth)
        except (RejectedPayload, SecurityError) as e:
            self.core.reject("pairing_authorization", command_id=command.command_id, error=str(e))
            self.evidence.record(
                "pairing_refused",
                {"command": command.name, "reason": str(e), "issuer": command.issuer},
                intervention=False,
            )
            locked_s = self.lockout.failed()
            if locked_s is not None:
                log.warning("pairing_locked_out", seconds=locked_s, level=self.lockout.level)
                self.evidence.record(
                    "pairing_lockout",
                    {"seconds": locked_s, "level": self.lockout.level, "issuer": command.issuer},
                    intervention=False,
                )
            return CommandReply(
                command_id=command.command_id, ok=False, message=f"authorization refused: {e}"
            )
        self.lockout.succeeded()
        return auth

    async def authorize(self, command: Command) -> CommandReply:
        """Open a pairing authorization; the reply with the comparison code follows on success."""
        auth = self._admit(command)
        if isinstance(auth, CommandReply):
            return auth
        sensor = auth.sensor_id
        reason = str(command.args.get("reason", "re-verification"))
        self.open[sensor] = _Open(auth, command.command_id, reason)
        self.core.status.pairing = True
        self.core.changed()
        log.info("pairing_authorized", sensor=sensor, token_id=auth.token_id, reason=reason)
        await self._send(sensor, PairingMessage(step="request"))
        return CommandReply(
            command_id=command.command_id,
            ok=True,
            message=f"pairing of {sensor} authorized",
            data={"pending": True},
        )

    async def unpair(self, command: Command) -> CommandReply:
        auth = self._admit(command)
        if isinstance(auth, CommandReply):
            return auth
        sensor = auth.sensor_id
        record = self.store.find(sensor)
        if record is None:
            return CommandReply(
                command_id=command.command_id, ok=False, message=f"{sensor} is not paired"
            )
        self.store.unpair(sensor)  # deletes the secret (P8/U8)
        self.on_unpaired(sensor)
        self.evidence.record("unpairing", {**record.public_fields(), "token_id": auth.token_id})
        return CommandReply(command_id=command.command_id, ok=True, message=f"{sensor} unpaired")

    # -- the sensor's side --------------------------------------------------------------------

    async def _send(self, sensor: str, message: PairingMessage) -> None:
        try:
            await self.core.link.publish(self.core.topics.mother_pairing(sensor), message)
        except LinkDown:
            log.warning("pairing_message_lost", sensor=sensor, step=message.step)

    def _expire(self) -> None:
        now = _now()
        for sensor, o in list(self.open.items()):
            if o.authorization.not_after <= now:
                del self.open[sensor]
                log.warning("pairing_authorization_expired", sensor=sensor)
        if self.core.status.pairing and not self.open:
            self.core.status.pairing = False
            self.core.changed()

    async def on_sensor_message(self, topic: str, payload: bytes) -> None:
        slot = self.core.topics.sensor_id_of(topic)
        try:
            message = decode(PairingMessage, payload, topic)
            if slot is None:
                raise RejectedPayload("wrong_topic", topic)
            if message.step == "hello":
                await self._on_hello(slot, PairingHello.model_validate_json(message.body))
            elif message.step == "confirm":
                await self._on_confirm(slot, PairingConfirm.model_validate_json(message.body))
            else:
                raise RejectedPayload("schema", topic, f"step {message.step} not from a sensor")
        except RejectedPayload as e:
            self.core.reject(e.reason, topic=topic, link="pairing")
        except ValidationError:
            self.core.reject("schema", topic=topic, link="pairing")

    def _genuine(self, hello: PairingHello) -> bool:
        """A hello signed by a device with a valid certificate of our manufacturer."""
        try:
            peer = verify_device_certificate(
                certificate_from_pem(hello.certificate_pem),
                self.ca,
                expected_role="remote_sensor",
                expected_id=hello.device_id,
                now=_now(),
            )
            verify(
                hello,
                hello.signature,
                peer.public_key,
                CONTEXT_PAIRING_HELLO,
                exclude=_HELLO_SIGNED_EXCLUDE,
            )
        except (SecurityError, ValueError):
            return False
        return True

    async def _on_hello(self, slot: str, hello: PairingHello) -> None:
        self._expire()
        pending = self.open.get(slot)
        if pending is not None and hello.device_id == slot:
            pending.session = MotherUnitPairing(
                self.identity,
                instrument_id=self.core.topics.instrument,
                va_public_key=self.va_public_key,
                authorization=pending.authorization,
                used_authorizations=self.store.used_authorizations(),
                approved_sensor_ids=self.approved,
            )
            try:
                response = pending.session.receive_hello(hello)
            except SecurityError as e:
                await self._fail(slot, pending, str(e))
                return
            self._consumed_hellos[hello.nonce] = None
            while len(self._consumed_hellos) > CONSUMED_HELLOS_KEPT:
                self._consumed_hellos.popitem(last=False)
            await self._send(slot, PairingMessage(step="response", body=response.model_dump_json()))
            return
        if hello.nonce in self._consumed_hellos:
            # T3: a hello an authorized ceremony already used, replayed. It is no sensor
            # asking to be paired, so it must not inhibit the instrument (one captured
            # message would stop it until the next verification): counted, nothing else.
            self.core.reject("pairing_replay", sensor=slot, device_id=hello.device_id)
            return
        if not self._genuine(hello):
            self.core.reject("pairing_forged", sensor=slot)
            return
        # P8/U8, 4.1: a genuine unit nobody authorized: the instrument must not function.
        if hello.device_id != slot:
            why = f"similar unit {hello.device_id} on {slot}: authorized pairing required"
        elif self.store.is_paired(slot):
            why = f"sensor {slot} asks to be paired again: authorized re-verification required"
        else:
            why = f"sensor {slot} is not paired: authorized pairing required"
        if self.core.status.inhibit(f"pairing:{hello.device_id}", why):
            self.core.changed()
        if hello.device_id not in self._reported:
            self._reported.add(hello.device_id)
            self.evidence.record(
                "sensor_rejected",
                {"slot": slot, "device_id": hello.device_id, "reason": why},
                intervention=False,
            )

    async def _on_confirm(self, slot: str, confirm: PairingConfirm) -> None:
        pending = self.open.get(slot)
        if pending is None or pending.session is None:
            self.core.reject("pairing_unexpected", sensor=slot)
            return
        try:
            record = pending.session.receive_confirm(confirm)
            self.store.save(record, authorization_id=pending.authorization.token_id)
        except SecurityError as e:
            await self._fail(slot, pending, str(e))
            return
        del self.open[slot]
        code = pending.session.comparison_code or ""
        previous = [p for p in self.store.peers() if p != slot]
        self.on_paired(record)
        # Pairing is an intervention: logbook and event counter (P8/U8, MID 8.2).
        self.evidence.record(
            "pairing",
            {
                **record.public_fields(),
                "token_id": pending.authorization.token_id,
                "reason": pending.reason,
                "other_paired": previous,
            },
        )
        # An authorized pairing is the re-verification 4.1 asks for: lift the swap inhibitions.
        for key in [k for k in self.core.status.reasons_keys() if k.startswith("pairing:")]:
            self.core.status.clear(key)
        self._reported.clear()
        self.core.status.pairing = bool(self.open)
        self.core.changed()
        await self._send(slot, PairingMessage(step="result", ok=True, message=code))
        await self.commands.reply(
            CommandReply(
                command_id=pending.command_id,
                ok=True,
                message=f"{slot} paired",
                data={"sensor_id": slot, "comparison_code": code, "key_id": record.key_id},
            )
        )

    async def _fail(self, slot: str, pending: _Open, error: str) -> None:
        self.open.pop(slot, None)
        self.core.status.pairing = bool(self.open)
        self.core.changed()
        self.evidence.record("pairing_failed", {"sensor": slot, "error": error}, intervention=False)
        await self._send(slot, PairingMessage(step="result", ok=False, message=error[:400]))
        await self.commands.reply(
            CommandReply(
                command_id=pending.command_id, ok=False, message=f"pairing failed: {error}"
            )
        )
