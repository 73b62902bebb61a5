"""Signed documents: a canonical, documented byte encoding plus Ed25519.

Signing input (what Ed25519 signs), byte for byte::

    context (ASCII, e.g. "welmec-testbed/type-approval/v1") ‖ 0x00 ‖ canonical JSON

Canonical JSON = ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` encoded as UTF-8, where ``value`` is a
pydantic model dumped with ``model_dump(mode="json")`` (datetimes as ISO 8601
strings, bytes as base64 when the model says so) minus the signature field.
Floats are written by Python's shortest round-trip ``repr``; NaN/Infinity are
refused. The context string gives domain separation: a signature made for a
processing result can never be replayed as an indication or a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel

from security_module.errors import SignatureInvalid
from security_module.primitives import ed25519_sign, ed25519_verify

__all__ = [
    "CONTEXT_CHECKPOINT",
    "CONTEXT_INDICATION",
    "CONTEXT_PAIRING_AUTHORIZATION",
    "CONTEXT_PAIRING_HELLO",
    "CONTEXT_PROCESSING_RESULT",
    "CONTEXT_RECORD_BATCH",
    "CONTEXT_STORAGE_ACK",
    "CONTEXT_TYPE_APPROVAL",
    "canonical_json",
    "sign",
    "signing_input",
    "verify",
]

# Domain-separation contexts. Teammates may add their own; keep them ASCII, no NUL.
CONTEXT_TYPE_APPROVAL = "welmec-testbed/type-approval/v1"
CONTEXT_PAIRING_AUTHORIZATION = "welmec-testbed/pairing-authorization/v1"
CONTEXT_PAIRING_HELLO = "welmec-testbed/pairing-hello/v1"
CONTEXT_PROCESSING_RESULT = "welmec-testbed/processing-result/v1"
CONTEXT_INDICATION = "welmec-testbed/indication/v1"
CONTEXT_RECORD_BATCH = "welmec-testbed/record-batch/v1"
CONTEXT_STORAGE_ACK = "welmec-testbed/storage-ack/v1"
CONTEXT_CHECKPOINT = "welmec-testbed/checkpoint/v1"  # notes use signed-note, see checkpoint.py

Signable = BaseModel | Mapping[str, Any] | Sequence[Any]


def _to_json_value(obj: Signable, exclude: set[str] | None) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude=exclude)
    if exclude and isinstance(obj, Mapping):
        return {k: v for k, v in obj.items() if k not in exclude}
    return obj


def canonical_json(obj: Signable, *, exclude: set[str] | None = None) -> bytes:
    """The canonical JSON bytes of ``obj`` (see module docstring)."""
    value = _to_json_value(obj, exclude)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def signing_input(context: str, obj: Signable, *, exclude: set[str] | None = None) -> bytes:
    if "\x00" in context or not context.isascii():
        raise ValueError("signing context must be ASCII without NUL")
    return context.encode("ascii") + b"\x00" + canonical_json(obj, exclude=exclude)


def sign(
    obj: Signable,
    key: Ed25519PrivateKey,
    context: str,
    *,
    exclude: set[str] | None = None,
) -> bytes:
    """Ed25519 signature (64 bytes) over ``signing_input(context, obj)``.

    Pass ``exclude={"signature"}`` when the model carries its own signature field.
    """
    return ed25519_sign(key, signing_input(context, obj, exclude=exclude))


def verify(
    obj: Signable,
    signature: bytes,
    public_key: Ed25519PublicKey,
    context: str,
    *,
    exclude: set[str] | None = None,
    signer: str = "",
) -> None:
    """Raise :class:`SignatureInvalid` unless ``signature`` is valid for ``obj``."""
    if len(signature) != 64:
        raise SignatureInvalid(
            "signature has the wrong length", context=context, signer=signer, got=len(signature)
        )
    try:
        ed25519_verify(public_key, signing_input(context, obj, exclude=exclude), signature,
                       what=context)
    except SignatureInvalid as e:
        raise SignatureInvalid(
            "Ed25519 signature does not verify", context=context, signer=signer
        ) from e
