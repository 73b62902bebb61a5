"""Persisted pairing records (P8/U8) with the pairing key encrypted at rest (T5; ADR 0003).

File ``<device dir>/pairings.json``, mode 0600, replaced atomically on every change::

    {"version": 1,
     "kdf": {"name": "scrypt", "salt": "<b64>", "n": 16384, "r": 8, "p": 1},
     "records": {"<peer id>": {"peer_id", "peer_role", "cert_fingerprint", "key_id",
                               "created", "sealed_key": "<b64 nonce ‖ ChaCha20-Poly1305>"}},
     "used_authorizations": ["<token id>", ...]}

The wrapping key is scrypt(passphrase, salt); the associated data binds each sealed key
to its peer id and key id. ``unpair`` rewrites the file without the record.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from security_module.errors import (
    AuthorizationError,
    KeyFileError,
    NotPaired,
    StateFileError,
)
from security_module.keystore import check_private_file, write_private_file

__all__ = ["PAIRINGS_FILE", "PairingRecord", "PairingStore", "key_id_of"]

PAIRINGS_FILE = "pairings.json"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def key_id_of(key: bytes) -> str:
    """Short public handle of a pairing key: first 16 hex of SHA-256("key-id" ‖ key)."""
    return hashlib.sha256(b"welmec-testbed/key-id/v1\x00" + key).hexdigest()[:16]


@dataclass(frozen=True, repr=False)
class PairingRecord:
    """The result of a pairing. T5: ``key`` never appears in repr/str/log output."""

    peer_id: str
    peer_role: str
    cert_fingerprint: str
    key_id: str
    created: dt.datetime
    key: bytes = field(compare=False)

    def __repr__(self) -> str:
        return (f"PairingRecord(peer_id={self.peer_id!r}, peer_role={self.peer_role!r}, "
                f"cert_fingerprint={self.cert_fingerprint[:16]!r}..., key_id={self.key_id!r}, "
                f"created={self.created.isoformat()!r}, key=<redacted>)")

    __str__ = __repr__

    def public_fields(self) -> dict[str, Any]:
        """Everything except the key, for logs and the logbook."""
        return {"peer_id": self.peer_id, "peer_role": self.peer_role,
                "cert_fingerprint": self.cert_fingerprint, "key_id": self.key_id,
                "created": self.created.isoformat()}

    def __getstate__(self) -> None:
        raise TypeError("a PairingRecord holds a secret and cannot be pickled")


class PairingStore:
    """``PairingStore(device_dir, passphrase)``: load, save and delete pairing records."""

    def __init__(self, directory: Path | str, passphrase: bytes) -> None:
        self.directory = Path(directory)
        self.path = self.directory / PAIRINGS_FILE
        self._passphrase = passphrase
        self._wrap: ChaCha20Poly1305 | None = None
        self._doc = self._load()

    def __repr__(self) -> str:
        return f"PairingStore({str(self.path)!r}, peers={self.peers()!r})"

    # --- persistence -------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": 1,
                    "kdf": {"name": "scrypt",
                            "salt": base64.b64encode(os.urandom(16)).decode(), **_SCRYPT},
                    "records": {}, "used_authorizations": []}
        check_private_file(self.path)
        try:
            doc: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("version") != 1 or not isinstance(doc.get("records"), dict):
                raise ValueError("unknown format")
        except (OSError, ValueError) as e:
            raise StateFileError(f"pairing store {self.path} is unreadable: {e}",
                                 path=str(self.path)) from e
        return doc

    def _write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(self.path, json.dumps(self._doc, indent=1).encode() + b"\n")

    def _wrapper(self) -> ChaCha20Poly1305:
        if self._wrap is None:
            kdf = self._doc["kdf"]
            wrap_key = hashlib.scrypt(self._passphrase, salt=base64.b64decode(kdf["salt"]),
                                      n=kdf["n"], r=kdf["r"], p=kdf["p"], dklen=32)
            self._wrap = ChaCha20Poly1305(wrap_key)
        return self._wrap

    @staticmethod
    def _ad(peer_id: str, key_id: str) -> bytes:
        label = b"welmec-testbed/pairing-record/v1\x00"
        return label + peer_id.encode() + b"\x00" + key_id.encode()

    # --- records -----------------------------------------------------------------------
    def peers(self) -> list[str]:
        return sorted(self._doc["records"])

    def is_paired(self, peer_id: str) -> bool:
        return peer_id in self._doc["records"]

    def get(self, peer_id: str) -> PairingRecord:
        """The record with its key; :class:`NotPaired` if there is none (P8/U8)."""
        try:
            r = self._doc["records"][peer_id]
        except KeyError as e:
            raise NotPaired(f"{peer_id} is not paired", sensor_id=peer_id) from e
        blob = base64.b64decode(r["sealed_key"])
        try:
            key = self._wrapper().decrypt(blob[:12], blob[12:], self._ad(peer_id, r["key_id"]))
        except InvalidTag as e:
            raise KeyFileError(
                f"cannot decrypt the pairing key for {peer_id} in {self.path}: wrong "
                "passphrase or tampered file", path=str(self.path), peer_id=peer_id) from e
        return PairingRecord(r["peer_id"], r["peer_role"], r["cert_fingerprint"], r["key_id"],
                             dt.datetime.fromisoformat(r["created"]), key)

    def find(self, peer_id: str) -> PairingRecord | None:
        return self.get(peer_id) if self.is_paired(peer_id) else None

    def is_authorization_used(self, token_id: str) -> bool:
        return token_id in self._doc["used_authorizations"]

    def used_authorizations(self) -> frozenset[str]:
        return frozenset(self._doc["used_authorizations"])

    def save(self, record: PairingRecord, *, authorization_id: str | None = None) -> None:
        """Persist ``record`` (replacing an older pairing with the same peer) and, in the
        same atomic write, mark ``authorization_id`` as used (single use, P8/U8)."""
        if authorization_id is not None:
            if self.is_authorization_used(authorization_id):
                raise AuthorizationError("pairing authorization was already used",
                                         token_id=authorization_id, sensor_id=record.peer_id)
            self._doc["used_authorizations"].append(authorization_id)
        nonce = os.urandom(12)
        sealed = nonce + self._wrapper().encrypt(nonce, record.key,
                                                 self._ad(record.peer_id, record.key_id))
        self._doc["records"][record.peer_id] = {
            "peer_id": record.peer_id, "peer_role": record.peer_role,
            "cert_fingerprint": record.cert_fingerprint, "key_id": record.key_id,
            "created": record.created.isoformat(),
            "sealed_key": base64.b64encode(sealed).decode(),
        }
        self._write()

    def unpair(self, peer_id: str) -> bool:
        """Delete the record and its secret; False if there was none."""
        if self._doc["records"].pop(peer_id, None) is None:
            return False
        self._write()
        return True
