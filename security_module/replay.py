"""Anti-replay window per sender (T3: replayed or stale data is never accepted).

A sliding bitmap window (RFC 4303 §3.4.3 style) over 64-bit sequence numbers, scoped
to the sender's boot number: a higher boot starts a fresh window, a lower boot is
rejected. Inside the window reordering is accepted, each sequence number once.
"""

from __future__ import annotations

from dataclasses import dataclass

from security_module.errors import ReplayDetected

__all__ = ["ReplayState", "ReplayWindow"]


@dataclass(frozen=True)
class ReplayState:
    """What to persist so that a restarted receiver stays replay-safe."""

    boot: int
    top: int  # highest sequence number accepted in ``boot`` (-1: none yet)


class ReplayWindow:
    __slots__ = ("_bitmap", "_boot", "_mask", "_sender", "_top", "size")

    def __init__(self, size: int = 64, *, sender: str = "") -> None:
        if size < 64:
            raise ValueError("the replay window holds at least 64 sequence numbers")
        self.size = size
        self._mask = (1 << size) - 1
        self._sender = sender
        self._boot = -1
        self._top = -1
        self._bitmap = 0  # bit i set <=> seq (top - i) seen

    @property
    def state(self) -> ReplayState:
        return ReplayState(self._boot, self._top)

    @classmethod
    def restore(cls, state: ReplayState, size: int = 64, *, sender: str = "") -> ReplayWindow:
        """Resume after a restart: everything up to ``state.top`` counts as seen."""
        w = cls(size, sender=sender)
        w._boot, w._top = state.boot, state.top
        w._bitmap = w._mask if state.top >= 0 else 0
        return w

    def check(self, boot: int, seq: int) -> None:
        """Raise :class:`ReplayDetected` if ``(boot, seq)`` would be refused (no update)."""
        if boot < self._boot:
            raise ReplayDetected("message from an older boot", sender=self._sender, boot=boot,
                                 expected=self._boot, seq=seq)
        if boot > self._boot or seq > self._top:
            return
        offset = self._top - seq
        if offset >= self.size:
            raise ReplayDetected("message older than the replay window", sender=self._sender,
                                 boot=boot, seq=seq, top=self._top)
        if self._bitmap >> offset & 1:
            raise ReplayDetected("duplicate message", sender=self._sender, boot=boot, seq=seq)

    def accept(self, boot: int, seq: int) -> None:
        """Check and record ``(boot, seq)``; call only after authentication succeeded."""
        if boot != self._boot:
            if boot < self._boot:
                raise ReplayDetected("message from an older boot", sender=self._sender,
                                     boot=boot, expected=self._boot, seq=seq)
            self._boot, self._top, self._bitmap = boot, -1, 0  # new boot: fresh window
        top = self._top
        if seq > top:
            shift = seq - top
            self._bitmap = ((self._bitmap << shift) | 1) & self._mask if shift < self.size else 1
            self._top = seq
            return
        offset = top - seq
        if offset >= self.size:
            raise ReplayDetected("message older than the replay window", sender=self._sender,
                                 boot=boot, seq=seq, top=top)
        bit = 1 << offset
        if self._bitmap & bit:
            raise ReplayDetected("duplicate message", sender=self._sender, boot=boot, seq=seq)
        self._bitmap |= bit
