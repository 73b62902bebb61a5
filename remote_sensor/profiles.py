"""Measurement profiles: what a sensor of a given instrument type produces.

A profile is a sample generator; a researcher adds an electricity meter or a
weighing instrument here (and its conversion in remote_processing) without
touching the security architecture (ARCHITECTURE.md §3).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class GasMeterProfile:
    """A diaphragm gas meter: index Vm (m³, monotonic), pressure p (kPa abs.), temperature T (K)."""

    flow_m3_per_h: float = 2.5
    vm: float = 0.0
    seed: int | None = None
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next(self, now: float, dt_s: float) -> tuple[float, float, float]:
        flow = max(0.0, self.flow_m3_per_h * (1 + 0.1 * self._rng.uniform(-1, 1)))
        self.vm += flow * dt_s / 3600.0  # the index never goes backwards
        p = 102.3 + 0.4 * math.sin(now / 60.0) + self._rng.uniform(-0.02, 0.02)
        t = 283.15 + 3.0 * math.sin(now / 300.0) + self._rng.uniform(-0.05, 0.05)
        return round(self.vm, 6), round(p, 4), round(t, 3)


PROFILES = {"gas_meter": GasMeterProfile}
