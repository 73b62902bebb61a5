"""The sensor's bounded buffer of samples not yet acknowledged by the mother unit (T1, T8).

A sample leaves the buffer only when the mother unit acknowledges it (after
the store has it); until then it can be retransmitted on request. When the
buffer is full the sensor stops producing rather than dropping: a silently
dropped sample would be a gap nobody could explain.

The buffer survives a restart of the sensor process: every change is appended
to a journal with ``os.write`` before it takes effect, so a SIGKILL loses
nothing the kernel has. (Power loss is out of scope for the emulated sensor;
a real one keeps this in non-volatile memory.) The journal is compacted on
open.
"""

from __future__ import annotations

import base64
import os
import zlib
from collections import OrderedDict
from pathlib import Path


class OutboxFull(Exception):
    """No room for another unacknowledged sample."""


class Outbox:
    def __init__(self, capacity: int = 10_000, journal: Path | None = None) -> None:
        self.capacity = capacity
        self._pending: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._fd: int | None = None
        self.recovered = 0
        if journal is not None:
            self._open(journal)

    def _open(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_bytes().split(b"\n"):
                self._replay(line)
        self.recovered = len(self._pending)
        # Compact: rewrite only what is still pending, then swap atomically.
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            for (boot, seq), payload in self._pending.items():
                f.write(_add_line(boot, seq, payload))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def _replay(self, line: bytes) -> None:
        parts = line.split(b" ")
        try:
            if parts[0] == b"add" and len(parts) == 5:
                payload = base64.b64decode(parts[3], validate=True)
                if zlib.crc32(payload) != int(parts[4]):
                    raise ValueError("torn line")
                self._pending[(int(parts[1]), int(parts[2]))] = payload
            elif parts[0] == b"ack" and len(parts) == 3:
                self._drop(int(parts[1]), int(parts[2]))
        except ValueError:
            pass  # a torn last line from a crash: the sample it named was never sent

    def _log(self, line: bytes) -> None:
        if self._fd is not None:
            os.write(self._fd, line)

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.capacity

    def add(self, boot: int, seq: int, payload: bytes) -> None:
        if len(self._pending) >= self.capacity:
            raise OutboxFull(f"{self.capacity} samples unacknowledged")
        self._log(_add_line(boot, seq, payload))
        self._pending[(boot, seq)] = payload

    def acknowledge(self, boot: int, upto: int) -> int:
        """Drop everything of earlier boots and of ``boot`` up to ``upto``; return how many."""
        n = self._drop(boot, upto)
        if n:
            self._log(b"ack %d %d\n" % (boot, upto))
        return n

    def _drop(self, boot: int, upto: int) -> int:
        # Samples enter in (boot, seq) order, so the acknowledged ones are a prefix.
        n = 0
        while self._pending:
            b, s = next(iter(self._pending))
            if b > boot or (b == boot and s > upto):
                break
            self._pending.popitem(last=False)
            n += 1
        return n

    def get(self, boot: int, seq: int) -> bytes | None:
        return self._pending.get((boot, seq))

    def items(self) -> list[tuple[tuple[int, int], bytes]]:
        return list(self._pending.items())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _add_line(boot: int, seq: int, payload: bytes) -> bytes:
    # The CRC tells a complete line from one torn by a crash in the middle of a write.
    return b"add %d %d %s %d\n" % (boot, seq, base64.b64encode(payload), zlib.crc32(payload))
