"""A persisted boot counter: the high 32 bits of every AEAD nonce (T3, A_BOOT).

Incremented and fsynced on every start *before* the first envelope is sealed, so a
restart never reuses a (key, nonce) pair even though sequence numbers restart at 0.
"""

from __future__ import annotations

import os
from pathlib import Path

from security_module.errors import NonceExhausted, StateFileError

__all__ = ["MAX_BOOT", "BootCounter"]

MAX_BOOT = 2**32 - 1


class BootCounter:
    """``BootCounter(path).next_boot()`` → the new boot number (1, 2, ...)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def current(self) -> int:
        """The last boot number handed out (0 if never started)."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as e:
            raise StateFileError(f"cannot read boot counter {self.path}: {e}",
                                 path=str(self.path)) from e
        if not text.isdigit():
            # Never guess: a guessed value could repeat a nonce.
            raise StateFileError(f"boot counter {self.path} is corrupt; re-pair the device",
                                 path=str(self.path))
        return int(text)

    def next_boot(self) -> int:
        """Increment, persist durably (write, fsync, rename, fsync dir) and return."""
        boot = self.current() + 1
        if boot > MAX_BOOT:
            raise NonceExhausted("boot counter exhausted; re-pair to get a new key",
                                 path=str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{boot}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return boot
