"""Checkpoints in the C2SP ``tlog-checkpoint`` format inside a C2SP ``signed-note``.

Note text (tlog-checkpoint)::

    <origin>\\n
    <tree size, decimal>\\n
    <base64 root hash>\\n
    [<extension line>\\n ...]          e.g. "timestamp 2025-01-01T00:00:00.000000Z"

Signed note = note text ‖ "\\n" ‖ one line per signature::

    — <key name> <base64(4-byte key ID ‖ 64-byte Ed25519 signature over the note text)>\\n

key ID = SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte Ed25519 public key)[:4] (signed-note,
signature type 0x01). Other transparency-log tools (Go ``golang.org/x/mod/sumdb/note``,
transparency-dev) can read and verify these notes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from security_module.errors import CheckpointMalformed, SignatureInvalid
from security_module.primitives import ed25519_public_bytes

__all__ = [
    "Checkpoint",
    "NoteSigner",
    "NoteVerifier",
    "SignedCheckpoint",
    "note_key_id",
    "open_checkpoint",
    "parse_signed_note",
]

_EM_DASH = "\u2014"
_SIG_TYPE_ED25519 = b"\x01"
_MAX_SIGNATURES = 16
_TIMESTAMP = "timestamp "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def note_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """signed-note key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + _SIG_TYPE_ED25519 + ed25519_public_bytes(public_key)
    ).digest()[:4]


def _check_key_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise ValueError(f"signed-note key name {name!r} must be non-empty, no spaces or '+'")


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, size, root hash, extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError("origin must be a non-empty single line")
        if self.size < 0 or len(self.root_hash) != 32:
            raise ValueError("size must be >= 0 and the root hash 32 bytes")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise ValueError("extension lines must be non-empty single lines")

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        lines += self.extensions
        return "".join(line + "\n" for line in lines)

    @property
    def timestamp(self) -> dt.datetime | None:
        for ext in self.extensions:
            if ext.startswith(_TIMESTAMP):
                try:
                    return dt.datetime.fromisoformat(ext[len(_TIMESTAMP):])
                except ValueError:
                    return None
        return None

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointMalformed("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointMalformed("checkpoint needs origin, size and root hash lines")
        origin, size_s, root_s, *exts = lines
        if not re.fullmatch(r"0|[1-9][0-9]*", size_s):
            raise CheckpointMalformed("tree size is not a canonical decimal", got=size_s)
        try:
            root = base64.b64decode(root_s, validate=True)
        except (binascii.Error, ValueError) as e:
            raise CheckpointMalformed("root hash is not base64", got=root_s) from e
        if len(root) != 32 or base64.b64encode(root).decode() != root_s:
            raise CheckpointMalformed("root hash must be canonical base64 of 32 bytes")
        try:
            return cls(origin, int(size_s), root, tuple(exts))
        except ValueError as e:
            raise CheckpointMalformed(str(e)) from e


@dataclass(frozen=True)
class NoteSigner:
    """Signs notes as ``name`` (e.g. ``gm-0001/mother-unit``) with an Ed25519 key."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.private_key.public_key())

    def sign_note(self, text: str) -> str:
        """A signed note with one signature line."""
        _check_note_text(text)
        kid = note_key_id(self.name, self.private_key.public_key())
        sig = self.private_key.sign(text.encode("utf-8"))
        return f"{text}\n{_EM_DASH} {self.name} {base64.b64encode(kid + sig).decode()}\n"

    def sign(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        note = self.sign_note(checkpoint.text())
        return SignedCheckpoint(checkpoint, note)


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        _check_key_name(self.name)

    @property
    def key_id(self) -> bytes:
        return note_key_id(self.name, self.public_key)

    def verifier_key(self) -> str:
        """The Go ``note`` verifier-key string: name+hex(key id)+base64(0x01 ‖ pubkey)."""
        raw = _SIG_TYPE_ED25519 + ed25519_public_bytes(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str  # the full signed note, byte-exact as published


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise CheckpointMalformed("note text must end with a newline")
    if _CONTROL.search(text):
        raise CheckpointMalformed("note text contains control characters")


def parse_signed_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its text and ``(name, key id, signature)`` tuples."""
    _check_note_text(note)
    sep = note.rfind("\n\n")
    if sep < 0:
        raise CheckpointMalformed("signed note has no blank line before the signatures")
    text, sig_block = note[: sep + 1], note[sep + 2:]
    sigs: list[tuple[str, bytes, bytes]] = []
    for line in sig_block[:-1].split("\n") if sig_block else []:
        m = re.fullmatch(_EM_DASH + r" (\S+) ([A-Za-z0-9+/=]+)", line)
        if m is None:
            raise CheckpointMalformed("malformed signature line", line=line[:80])
        try:
            blob = base64.b64decode(m.group(2), validate=True)
        except (binascii.Error, ValueError) as e:
            raise CheckpointMalformed("signature is not base64") from e
        if len(blob) < 5:
            raise CheckpointMalformed("signature too short")
        sigs.append((m.group(1), blob[:4], blob[4:]))
    if not sigs:
        raise CheckpointMalformed("signed note has no signature lines")
    if len(sigs) > _MAX_SIGNATURES:
        raise CheckpointMalformed("too many signatures", count=len(sigs))
    return text, sigs


def open_checkpoint(
    note: str, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note and return its body.

    Signatures from unknown keys are ignored (signed-note); a known key whose signature
    fails raises :class:`SignatureInvalid`; no known signature raises too.
    """
    text, sigs = parse_signed_note(note)
    kid = verifier.key_id
    verified = False
    for name, sig_kid, sig in sigs:
        if name != verifier.name or sig_kid != kid:
            continue
        try:
            verifier.public_key.verify(sig, text.encode("utf-8"))
        except InvalidSignature as e:
            raise SignatureInvalid("checkpoint signature does not verify",
                                   signer=verifier.name) from e
        verified = True
    if not verified:
        raise SignatureInvalid("checkpoint is not signed by the expected key",
                               signer=verifier.name)
    cp = Checkpoint.parse(text)
    if origin is not None and cp.origin != origin:
        raise CheckpointMalformed("checkpoint has another origin", expected=origin,
                                  got=cp.origin)
    return cp


def timestamp_extension(when: dt.datetime) -> str:
    """``timestamp <RFC 3339 UTC>`` extension line (MID 8.2: time of the evidence)."""
    return _TIMESTAMP + when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
