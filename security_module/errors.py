"""One exception tree for everything the security module can refuse.

STYLE: errors are named after what went wrong and carry structured fields, so a
caller can log them as ``log.warning(err.event, **err.fields)`` without parsing
the message. Foreign exceptions (OSError, cryptography's InvalidTag/InvalidSignature,
ValueError from parsers) are converted once, at the edge, with ``raise ... from e``.
"""

from __future__ import annotations

from typing import Any


class SecurityError(Exception):
    """Base of every error raised by ``security_module``.

    ``fields`` holds the structured context (sensor id, seq, expected/got, path...)
    that a structlog line needs; ``event`` is a stable snake_case name for the log.
    """

    event: str = "security_error"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = fields

    def __getattr__(self, name: str) -> Any:
        # Structured fields are also readable as attributes (err.sensor_id, err.seq).
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        extra = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.message} ({extra})"


class NotPaired(SecurityError):
    """A message came from (or is meant for) a device without a pairing record (P8/U8)."""

    event = "not_paired"


class ReplayDetected(SecurityError):
    """Duplicate, too old, or from an older boot (T3: no replayed data is accepted)."""

    event = "replay_detected"


class AuthenticationFailed(SecurityError):
    """An AEAD tag or a MAC did not verify (T2: data integrity/authenticity)."""

    event = "authentication_failed"


class SignatureInvalid(SecurityError):
    """An Ed25519 signature did not verify, or the signer is not the expected one."""

    event = "signature_invalid"


class SoftwareIdMismatch(SecurityError):
    """A software identifier is not among those approved in the type approval (P2/U2)."""

    event = "software_id_mismatch"


class InvalidProof(SecurityError):
    """A Merkle inclusion or consistency proof did not verify (RFC 9162 §2.1.3/§2.1.4)."""

    event = "invalid_proof"


class CheckpointMalformed(SecurityError):
    """A checkpoint / signed note could not be parsed (C2SP tlog-checkpoint, signed-note)."""

    event = "checkpoint_malformed"


class CertificateInvalid(SecurityError):
    """A certificate does not chain to the manufacturer CA, is expired, or names
    another role/device than expected."""

    event = "certificate_invalid"


class KeyFileError(SecurityError):
    """A key or secret file is missing, has unsafe permissions, or the passphrase is wrong
    (T5/L5, A_CRYPTO_RET). The message always names the path and the fix."""

    event = "key_file_error"


class StateFileError(SecurityError):
    """A persisted state file (boot counter, pairing store) is unreadable or corrupt."""

    event = "state_file_error"


class AuthorizationError(SecurityError):
    """A pairing authorization is missing, expired, reused, for another device,
    or carries a bad signature (P8/U8: pairing is an authorized ceremony)."""

    event = "authorization_error"


class PairingFailed(SecurityError):
    """The pairing ceremony failed for a protocol reason (wrong state, bad message)."""

    event = "pairing_failed"


class NonceExhausted(SecurityError):
    """The boot counter or sequence number would wrap: never reuse an AEAD nonce."""

    event = "nonce_exhausted"


class ProvisioningError(SecurityError):
    """Provisioned material is missing, or would be overwritten without ``force``."""

    event = "provisioning_error"


class LogbookCorrupt(SecurityError):
    """The logbook file is inconsistent; ``first_bad_index`` names the first bad entry
    (MID Annex I 8.2: evidence of an intervention must not be lost)."""

    event = "logbook_corrupt"

    def __init__(self, message: str, *, first_bad_index: int, **fields: Any) -> None:
        super().__init__(message, first_bad_index=first_bad_index, **fields)
        self.first_bad_index = first_bad_index
