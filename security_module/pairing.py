"""Pairing ceremony (WELMEC 7.2 P8/U8, WELMEC 7.3 §4.1) as sans-io state machines.

Messages (pydantic; the MQTT layer only serializes them)::

    sensor        PairingHello     (cert, nonce_s, X25519 e_s, Ed25519 sig)        → mother unit
    mother unit   PairingResponse  (cert, nonce_m, X25519 e_m, nonce_s, sig, MAC_m) → sensor
    sensor        PairingConfirm   (MAC_s)                                         → mother unit

* Both sides check the peer certificate chains to the manufacturer CA and names the
  expected role and device id; each hello is signed by the device identity key over
  its canonical JSON (the response also signs the sensor's nonce: no replay).
* th = SHA-256("welmec-testbed/pairing-transcript/v1" ‖ 0x00 ‖ lp(hello) ‖ lp(response))
  over the signed bytes of both messages: both identities (certificates), both nonces,
  both ephemeral keys and the instrument id.
* okm = HKDF-SHA256(X25519(e, E'), salt = nonce_s ‖ nonce_m,
  info = "welmec-testbed/pairing/v1" ‖ 0x00 ‖ th, 96) = pairing key ‖ k_m ‖ k_s.
* MAC_m = HMAC-SHA256(k_m, "mother_unit" ‖ 0x00 ‖ th), MAC_s likewise with k_s.
* Comparison code = 6 decimal digits of SHA-256("code" ‖ 0x00 ‖ th): shown on both sides.
* The mother unit only proceeds while a :class:`PairingAuthorization` is open: signed
  by the verification authority, for this instrument and sensor, unexpired, unused.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import os
import uuid
from collections.abc import Callable, Collection, Container
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field

from security_module.errors import (
    AuthenticationFailed,
    AuthorizationError,
    PairingFailed,
    SecurityError,
    SignatureInvalid,
)
from security_module.identity import (
    DeviceIdentity,
    PeerCertificate,
    certificate_from_pem,
    verify_device_certificate,
)
from security_module.pairing_store import PairingRecord, key_id_of
from security_module.primitives import (
    hkdf_sha256,
    hmac_sha256,
    x25519_exchange,
    x25519_public_bytes,
)
from security_module.signing import (
    CONTEXT_PAIRING_AUTHORIZATION,
    CONTEXT_PAIRING_HELLO,
    canonical_json,
    sign,
    verify,
)

__all__ = [
    "MotherUnitPairing",
    "PairingAuthorization",
    "PairingConfirm",
    "PairingHello",
    "PairingResponse",
    "PairingState",
    "SensorPairing",
    "check_authorization",
    "comparison_code",
    "issue_authorization",
    "transcript_hash",
]

CONTEXT_PAIRING_RESPONSE = "welmec-testbed/pairing-response/v1"
_SIGNED_EXCLUDE = {"signature", "confirmation"}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64",
                              val_json_bytes="base64")


class PairingAuthorization(_Msg):
    """A verification officer's signed, single-use permission to pair one sensor."""

    v: Literal[1] = 1
    token_id: str = Field(min_length=8, max_length=64)
    instrument_id: str
    sensor_id: str
    issued_at: dt.datetime
    not_after: dt.datetime
    issuer: str = "verification-authority"
    signature: bytes = Field(min_length=64, max_length=64)


def issue_authorization(
    va_key: Ed25519PrivateKey,
    *,
    instrument_id: str,
    sensor_id: str,
    ttl: dt.timedelta = dt.timedelta(minutes=10),
    now: dt.datetime | None = None,
) -> PairingAuthorization:
    now = now or _utcnow()
    unsigned = PairingAuthorization(
        token_id=uuid.uuid4().hex, instrument_id=instrument_id, sensor_id=sensor_id,
        issued_at=now, not_after=now + ttl, signature=bytes(64),
    )
    sig = sign(unsigned, va_key, CONTEXT_PAIRING_AUTHORIZATION, exclude={"signature"})
    return unsigned.model_copy(update={"signature": sig})


def check_authorization(
    auth: PairingAuthorization | None,
    va_public_key: Ed25519PublicKey,
    *,
    instrument_id: str,
    sensor_id: str,
    now: dt.datetime,
    used: Container[str],
) -> None:
    """Raise :class:`AuthorizationError` unless ``auth`` lets ``sensor_id`` pair now."""
    if auth is None:
        raise AuthorizationError("no pairing authorization is open", sensor_id=sensor_id)
    fields = {"token_id": auth.token_id, "sensor_id": sensor_id}
    try:
        verify(auth, auth.signature, va_public_key, CONTEXT_PAIRING_AUTHORIZATION,
               exclude={"signature"}, signer="verification-authority")
    except SignatureInvalid as e:
        raise AuthorizationError("pairing authorization has a bad signature", **fields) from e
    if auth.instrument_id != instrument_id:
        raise AuthorizationError("pairing authorization is for another instrument",
                                 expected=instrument_id, got=auth.instrument_id, **fields)
    if auth.sensor_id != sensor_id:
        raise AuthorizationError("pairing authorization is for another sensor",
                                 expected=auth.sensor_id, got=sensor_id, **fields)
    if not auth.issued_at - dt.timedelta(minutes=5) <= now <= auth.not_after:
        raise AuthorizationError("pairing authorization has expired",
                                 not_after=auth.not_after.isoformat(), **fields)
    if auth.token_id in used:
        raise AuthorizationError("pairing authorization was already used", **fields)


class PairingHello(_Msg):
    v: Literal[1] = 1
    instrument_id: str
    role: str
    device_id: str
    certificate_pem: str
    nonce: bytes = Field(min_length=32, max_length=32)
    ephemeral_public: bytes = Field(min_length=32, max_length=32)
    signature: bytes = Field(min_length=64, max_length=64)


class PairingResponse(_Msg):
    v: Literal[1] = 1
    instrument_id: str
    role: str
    device_id: str
    certificate_pem: str
    nonce: bytes = Field(min_length=32, max_length=32)
    ephemeral_public: bytes = Field(min_length=32, max_length=32)
    peer_nonce: bytes = Field(min_length=32, max_length=32)
    signature: bytes = Field(min_length=64, max_length=64)
    confirmation: bytes = Field(min_length=32, max_length=32)


class PairingConfirm(_Msg):
    v: Literal[1] = 1
    device_id: str
    confirmation: bytes = Field(min_length=32, max_length=32)


class PairingState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"


def _lp(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def transcript_hash(hello: PairingHello, response: PairingResponse) -> bytes:
    """th over the signed parts of both messages (see module docstring)."""
    return hashlib.sha256(
        b"welmec-testbed/pairing-transcript/v1\x00"
        + _lp(canonical_json(hello, exclude=_SIGNED_EXCLUDE))
        + _lp(canonical_json(response, exclude=_SIGNED_EXCLUDE))
    ).digest()


def comparison_code(th: bytes) -> str:
    """Six digits an operator compares on both displays."""
    v = int.from_bytes(hashlib.sha256(b"code\x00" + th).digest()[:8], "big")
    return f"{v % 1_000_000:06d}"


def _derive(shared: bytes, hello: PairingHello, th: bytes, mu_nonce: bytes) -> tuple[bytes, ...]:
    okm = hkdf_sha256(shared, salt=hello.nonce + mu_nonce,
                      info=b"welmec-testbed/pairing/v1\x00" + th, length=96)
    return okm[:32], okm[32:64], okm[64:]


def _mac(key: bytes, role: str, th: bytes) -> bytes:
    return hmac_sha256(key, role.encode() + b"\x00" + th)


class _Side:
    def __init__(self, identity: DeviceIdentity, instrument_id: str,
                 now: Callable[[], dt.datetime]) -> None:
        self.identity = identity
        self.instrument_id = instrument_id
        self._now = now
        self.state = PairingState.IDLE
        self._eph = X25519PrivateKey.generate()
        self._nonce = os.urandom(32)
        self.comparison_code: str | None = None
        self.record: PairingRecord | None = None
        self.peer: PeerCertificate | None = None

    def _expect(self, state: PairingState) -> None:
        if self.state is not state:
            raise PairingFailed("pairing message out of order", state=self.state.value,
                                expected=state.value)

    def _peer_cert(self, pem: str, role: str, device_id: str) -> PeerCertificate:
        return verify_device_certificate(
            certificate_from_pem(pem), self.identity.ca_certificate, expected_role=role,
            expected_id=device_id, now=self._now(),
        )

    def _record(self, peer: PeerCertificate, key: bytes) -> PairingRecord:
        return PairingRecord(peer.device_id, peer.role, peer.fingerprint, key_id_of(key),
                             self._now(), key)


class SensorPairing(_Side):
    """Sensor side: ``start()`` → hello; ``receive_response()`` → confirm; then ``record``."""

    def __init__(self, identity: DeviceIdentity, *, instrument_id: str,
                 mother_unit_id: str = "mother-unit",
                 now: Callable[[], dt.datetime] = _utcnow) -> None:
        super().__init__(identity, instrument_id, now)
        self.mother_unit_id = mother_unit_id
        self._hello: PairingHello | None = None

    def start(self) -> PairingHello:
        self._expect(PairingState.IDLE)
        unsigned = PairingHello(
            instrument_id=self.instrument_id, role=self.identity.role,
            device_id=self.identity.device_id, certificate_pem=self.identity.certificate_pem,
            nonce=self._nonce, ephemeral_public=x25519_public_bytes(self._eph),
            signature=bytes(64),
        )
        sig = sign(unsigned, self.identity.private_key, CONTEXT_PAIRING_HELLO,
                   exclude=_SIGNED_EXCLUDE)
        self._hello = unsigned.model_copy(update={"signature": sig})
        self.state = PairingState.WAITING
        return self._hello

    def receive_response(self, resp: PairingResponse) -> PairingConfirm:
        self._expect(PairingState.WAITING)
        assert self._hello is not None
        try:
            peer = self._peer_cert(resp.certificate_pem, "mother_unit", self.mother_unit_id)
            if resp.device_id != peer.device_id or resp.role != peer.role:
                raise PairingFailed("response names another device than its certificate")
            if resp.instrument_id != self.instrument_id:
                raise PairingFailed("response is for another instrument",
                                    expected=self.instrument_id, got=resp.instrument_id)
            if not hmac.compare_digest(resp.peer_nonce, self._nonce):
                raise PairingFailed("response does not answer this hello (nonce)")
            verify(resp, resp.signature, peer.public_key, CONTEXT_PAIRING_RESPONSE,
                   exclude=_SIGNED_EXCLUDE, signer=peer.device_id)
            th = transcript_hash(self._hello, resp)
            shared = x25519_exchange(self._eph, resp.ephemeral_public)
            key, k_m, k_s = _derive(shared, self._hello, th, resp.nonce)
            if not hmac.compare_digest(resp.confirmation, _mac(k_m, "mother_unit", th)):
                raise AuthenticationFailed("mother unit key confirmation does not verify",
                                           peer_id=peer.device_id)
        except SecurityError:
            self.state = PairingState.FAILED
            raise
        self.peer = peer
        self.comparison_code = comparison_code(th)
        self.record = self._record(peer, key)
        self.state = PairingState.DONE
        return PairingConfirm(device_id=self.identity.device_id,
                              confirmation=_mac(k_s, "remote_sensor", th))


class MotherUnitPairing(_Side):
    """Mother-unit side: ``receive_hello()`` → response; ``receive_confirm()`` → record.

    Completes only under an open authorization (P8/U8). Persist the result with
    ``store.save(pairing.record, authorization_id=pairing.authorization_id)``, which
    marks the token used in the same atomic write.
    """

    def __init__(
        self,
        identity: DeviceIdentity,
        *,
        instrument_id: str,
        va_public_key: Ed25519PublicKey,
        authorization: PairingAuthorization | None,
        used_authorizations: Container[str] = frozenset(),
        approved_sensor_ids: Collection[str] | None = None,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        super().__init__(identity, instrument_id, now)
        self.va_public_key = va_public_key
        self.authorization = authorization
        self.used_authorizations = used_authorizations
        self.approved_sensor_ids = approved_sensor_ids
        self._th = b""
        self._k_s = b""
        self._key = b""

    @property
    def authorization_id(self) -> str | None:
        return self.authorization.token_id if self.authorization else None

    def _check_auth(self, sensor_id: str) -> None:
        check_authorization(self.authorization, self.va_public_key,
                            instrument_id=self.instrument_id, sensor_id=sensor_id,
                            now=self._now(), used=self.used_authorizations)

    def receive_hello(self, hello: PairingHello) -> PairingResponse:
        self._expect(PairingState.IDLE)
        try:
            self._check_auth(hello.device_id)
            if self.approved_sensor_ids is not None and \
                    hello.device_id not in self.approved_sensor_ids:
                raise PairingFailed("sensor is not approved for this instrument",
                                    sensor_id=hello.device_id)
            peer = self._peer_cert(hello.certificate_pem, "remote_sensor", hello.device_id)
            if hello.role != peer.role:
                raise PairingFailed("hello names another role than its certificate")
            if hello.instrument_id != self.instrument_id:
                raise PairingFailed("hello is for another instrument",
                                    expected=self.instrument_id, got=hello.instrument_id)
            verify(hello, hello.signature, peer.public_key, CONTEXT_PAIRING_HELLO,
                   exclude=_SIGNED_EXCLUDE, signer=peer.device_id)
            unsigned = PairingResponse(
                instrument_id=self.instrument_id, role=self.identity.role,
                device_id=self.identity.device_id,
                certificate_pem=self.identity.certificate_pem, nonce=self._nonce,
                ephemeral_public=x25519_public_bytes(self._eph), peer_nonce=hello.nonce,
                signature=bytes(64), confirmation=bytes(32),
            )
            sig = sign(unsigned, self.identity.private_key, CONTEXT_PAIRING_RESPONSE,
                       exclude=_SIGNED_EXCLUDE)
            th = transcript_hash(hello, unsigned)
            shared = x25519_exchange(self._eph, hello.ephemeral_public)
            key, k_m, k_s = _derive(shared, hello, th, self._nonce)
        except SecurityError:
            self.state = PairingState.FAILED
            raise
        self.peer, self._th, self._k_s, self._key = peer, th, k_s, key
        self.comparison_code = comparison_code(th)
        self.state = PairingState.WAITING
        return unsigned.model_copy(update={"signature": sig,
                                           "confirmation": _mac(k_m, "mother_unit", th)})

    def receive_confirm(self, confirm: PairingConfirm) -> PairingRecord:
        self._expect(PairingState.WAITING)
        assert self.peer is not None
        try:
            if confirm.device_id != self.peer.device_id:
                raise PairingFailed("confirmation from another device",
                                    expected=self.peer.device_id, got=confirm.device_id)
            if not hmac.compare_digest(confirm.confirmation,
                                       _mac(self._k_s, "remote_sensor", self._th)):
                raise AuthenticationFailed("sensor key confirmation does not verify",
                                           sensor_id=self.peer.device_id)
            self._check_auth(self.peer.device_id)  # still open at completion?
        except SecurityError:
            self.state = PairingState.FAILED
            self._key = b""
            raise
        self.record = self._record(self.peer, self._key)
        self._key = b""
        self.state = PairingState.DONE
        return self.record
