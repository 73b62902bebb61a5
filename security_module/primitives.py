"""Thin, typed wrappers over the `cryptography` primitives the module assembles.

Kept separate so that the known-answer tests (RFC 8032, RFC 7748, RFC 5869) exercise
exactly the code paths the protocols use.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security_module.errors import PairingFailed, SignatureInvalid

__all__ = [
    "ed25519_private_from_seed",
    "ed25519_public_bytes",
    "ed25519_public_from_bytes",
    "ed25519_sign",
    "ed25519_verify",
    "hkdf_sha256",
    "hmac_sha256",
    "key_fingerprint",
    "x25519_exchange",
    "x25519_public_bytes",
]


def ed25519_private_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """RFC 8032 §5.1.5: the 32-byte secret key (seed)."""
    return Ed25519PrivateKey.from_private_bytes(seed)


def ed25519_public_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_public_from_bytes(raw: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as e:
        raise SignatureInvalid("not an Ed25519 public key", length=len(raw)) from e


def ed25519_sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """Pure Ed25519 (RFC 8032 §5.1.6) over ``message``."""
    return key.sign(message)


def ed25519_verify(
    public_key: Ed25519PublicKey, message: bytes, signature: bytes, *, what: str = "message"
) -> None:
    """RFC 8032 §5.1.7; raises :class:`SignatureInvalid` naming ``what`` was signed."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature as e:
        raise SignatureInvalid(f"Ed25519 signature over {what} does not verify", what=what) from e


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex (used as a stable key id)."""
    return hashlib.sha256(ed25519_public_bytes(public_key)).hexdigest()


def x25519_public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x25519_exchange(private_key: X25519PrivateKey, peer_public: bytes) -> bytes:
    """RFC 7748 §5 X25519; a low-order peer key (all-zero output) is refused (§6.1)."""
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as e:
        raise PairingFailed("X25519 exchange failed (invalid or low-order peer key)") from e
    if shared == bytes(32):  # pragma: no cover - cryptography already raises
        raise PairingFailed("X25519 produced the all-zero shared secret")
    return shared


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF with SHA-256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()
