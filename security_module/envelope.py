"""Sealed envelopes: ChaCha20-Poly1305 under the pairing key (T2, T3, T5; ADR 0001).

* Direction key: ``HKDF-SHA256(pairing key, info = "welmec-testbed/envelope/v1" ‖ 0x00
  ‖ sender ‖ 0x00 ‖ recipient)`` - each direction has its own key, so the two sides'
  independent boot counters can never produce the same (key, nonce).
* Nonce (96 bit) = boot (32-bit BE) ‖ seq (64-bit BE); boot comes from a persisted
  :class:`~security_module.boot_counter.BootCounter`, seq counts from 0 per boot.
* Associated data = ``"welmec-testbed/envelope/v1"`` ‖ lp(sender) ‖ lp(recipient) ‖
  lp(msg_type) ‖ lp(topic), where lp(x) = 2-byte BE length ‖ UTF-8 bytes. A message
  moved to another topic, type, sender or recipient fails authentication. Boot and seq
  are bound as the nonce itself: changing either changes the ChaCha20 keystream and
  the Poly1305 key, so the tag fails (they are not repeated in the AD).
* ``Opener.open`` authenticates first, then applies the replay window.

The hot path is kept minimal: AD prefixes are cached per (type, topic), the AEAD
object is reused, and no pydantic validation happens per call on an existing model.
"""

from __future__ import annotations

import struct
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from pydantic import BaseModel, ConfigDict, Field

from security_module.errors import AuthenticationFailed, NonceExhausted
from security_module.primitives import hkdf_sha256
from security_module.replay import ReplayState, ReplayWindow

__all__ = ["MAX_CIPHERTEXT", "Opener", "SealedEnvelope", "Sealer", "direction_key"]

_LABEL = b"welmec-testbed/envelope/v1"
_NONCE = struct.Struct(">IQ")
_pack = _NONCE.pack
MAX_SEQ = 2**64 - 1
MAX_CIPHERTEXT = 256 * 1024


class SealedEnvelope(BaseModel):
    """The wire form of a sealed message (JSON: ciphertext as base64)."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64",
                              val_json_bytes="base64")

    v: Literal[1] = 1
    sender: str = Field(min_length=1, max_length=128)
    recipient: str = Field(min_length=1, max_length=128)
    msg_type: str = Field(min_length=1, max_length=128)
    boot: int = Field(ge=0, le=2**32 - 1)
    seq: int = Field(ge=0, le=MAX_SEQ)
    ciphertext: bytes = Field(min_length=16, max_length=MAX_CIPHERTEXT)


def direction_key(pairing_key: bytes, sender: str, recipient: str) -> bytes:
    if len(pairing_key) != 32:
        raise ValueError("the pairing key is 32 bytes")
    info = _LABEL + b"\x00" + sender.encode() + b"\x00" + recipient.encode()
    return hkdf_sha256(pairing_key, salt=None, info=info, length=32)


def _lp(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > 0xFFFF:
        raise ValueError("field too long for associated data")
    return len(b).to_bytes(2, "big") + b


class _Base:
    __slots__ = ("_ad", "_aead", "_prefix", "recipient", "sender")

    def __init__(self, pairing_key: bytes, sender: str, recipient: str) -> None:
        self.sender = sender
        self.recipient = recipient
        # T5: only the AEAD object holds the key; no attribute exposes it.
        self._aead = ChaCha20Poly1305(direction_key(pairing_key, sender, recipient))
        self._prefix = _LABEL + _lp(sender) + _lp(recipient)
        self._ad: dict[tuple[str, str], bytes] = {}

    def _ad_prefix(self, msg_type: str, topic: str) -> bytes:
        key = (msg_type, topic)
        p = self._ad.get(key)
        if p is None:
            p = self._prefix + _lp(msg_type) + _lp(topic)
            if len(self._ad) < 1024:  # bounded: topics come from the network
                self._ad[key] = p
        return p

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sender={self.sender!r}, recipient={self.recipient!r})"


class Sealer(_Base):
    """Seals messages from ``sender`` to ``recipient`` in boot ``boot``."""

    __slots__ = ("boot", "seq")

    def __init__(self, pairing_key: bytes, sender: str, recipient: str, boot: int) -> None:
        if not 0 < boot < 2**32:
            raise ValueError("boot must come from a BootCounter (1 .. 2**32-1)")
        super().__init__(pairing_key, sender, recipient)
        self.boot = boot
        self.seq = 0  # next sequence number

    def seal(self, msg_type: str, topic: str, plaintext: bytes) -> SealedEnvelope:
        seq = self.seq
        if seq > MAX_SEQ:
            raise NonceExhausted("sequence numbers exhausted in this boot; restart",
                                 sender=self.sender)
        self.seq = seq + 1
        nonce = _pack(self.boot, seq)
        ct = self._aead.encrypt(nonce, plaintext, self._ad_prefix(msg_type, topic))
        return SealedEnvelope(
            sender=self.sender, recipient=self.recipient, msg_type=msg_type,
            boot=self.boot, seq=seq, ciphertext=ct,
        )


class Opener(_Base):
    """Opens envelopes from ``sender`` to ``recipient``: authenticate, then anti-replay."""

    __slots__ = ("window",)

    def __init__(
        self,
        pairing_key: bytes,
        sender: str,
        recipient: str,
        *,
        window_size: int = 64,
        replay_state: ReplayState | None = None,
    ) -> None:
        super().__init__(pairing_key, sender, recipient)
        self.window = (ReplayWindow(window_size, sender=sender) if replay_state is None
                       else ReplayWindow.restore(replay_state, window_size, sender=sender))

    def open(self, env: SealedEnvelope, topic: str) -> bytes:
        """Plaintext of ``env`` received on ``topic``; raises AuthenticationFailed or
        ReplayDetected. Nothing that fails here may reach the indication (T2/T3)."""
        return self._open(env, topic, replay=True)

    def authenticate(self, env: SealedEnvelope, topic: str) -> bytes:
        """Plaintext of ``env``, authenticated, WITHOUT the replay window.

        For a receiver that keeps exact per-sequence bookkeeping of its own (the
        mother unit's sensor tracks): it must accept a retransmission that fills a
        gap older than any fixed window, and must not mark as seen a message it
        decided not to take yet. Such a caller owns replay protection (T3).
        """
        return self._open(env, topic, replay=False)

    def _open(self, env: SealedEnvelope, topic: str, *, replay: bool) -> bytes:
        # Hot path: pydantic v2 keeps field values in the instance __dict__; reading it
        # once is ~4x cheaper than six attribute lookups on a BaseModel.
        f = env.__dict__
        boot = f["boot"]
        seq = f["seq"]
        msg_type = f["msg_type"]
        # The opener's own sender/recipient are in the AD; the envelope's labels must
        # agree, or a relabelled envelope would be attributed to the wrong device.
        if f["sender"] != self.sender or f["recipient"] != self.recipient:
            raise AuthenticationFailed(
                "envelope names another sender/recipient", sender=f["sender"],
                recipient=f["recipient"], expected_sender=self.sender, topic=topic,
            )
        try:
            nonce = _pack(boot, seq)
            ad = self._ad.get((msg_type, topic)) or self._ad_prefix(msg_type, topic)
            plaintext = self._aead.decrypt(nonce, f["ciphertext"], ad)
        except (InvalidTag, struct.error, ValueError, TypeError) as e:
            raise AuthenticationFailed(
                "envelope does not authenticate", sender=self.sender, recipient=self.recipient,
                msg_type=msg_type, topic=topic, boot=boot, seq=seq,
            ) from e
        if not replay:
            return plaintext
        # T3: only authenticated (boot, seq) pairs move the replay window. The common
        # case (same boot, next sequence number) is inlined; all else goes to accept().
        w = self.window
        if boot == w._boot and seq > w._top:
            shift = seq - w._top
            w._bitmap = ((w._bitmap << shift) | 1) & w._mask if shift < w.size else 1
            w._top = seq
        else:
            w.accept(boot, seq)
        return plaintext

    @property
    def replay_state(self) -> ReplayState:
        return self.window.state
