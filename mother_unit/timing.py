"""T7 transmission delay: a bounded window of recent delays and its percentiles."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# A sample stamped this far after its arrival comes from a clock running ahead (A_RTC):
# a negative delay would otherwise hide a sensor clock that is wrong (T7).
CLOCK_AHEAD_MS = 500.0


@dataclass
class DelayStats:
    window: int = 4096
    _delays_ms: deque[float] = field(default_factory=deque)
    maximum_ms: float = 0.0

    def add(self, delay_ms: float) -> None:
        if len(self._delays_ms) >= self.window:
            self._delays_ms.popleft()
        self._delays_ms.append(delay_ms)
        self.maximum_ms = max(self.maximum_ms, delay_ms)

    def summary(self) -> dict[str, float]:
        if not self._delays_ms:
            return {}
        ordered = sorted(self._delays_ms)

        def pct(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

        return {
            "p50": pct(0.50),
            "p99": pct(0.99),
            "max": round(self.maximum_ms, 3),
            "n": float(len(ordered)),
        }
