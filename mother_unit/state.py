"""The instrument's state and the reasons for it.

INHIBITED wins over DEGRADED wins over OPERATIONAL. Each reason is a short
sentence a person can read on the display ("storage unavailable", "sensor
sensor-1 silent"); the state is derived from the open reasons, never set by
hand, so it cannot disagree with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.messages import InstrumentStateName


@dataclass
class InstrumentStatus:
    pairing: bool = False
    _inhibit: dict[str, str] = field(default_factory=dict)
    _degrade: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> InstrumentStateName:
        if self._inhibit:
            return "INHIBITED"
        if self.pairing:
            return "PAIRING"
        if self._degrade:
            return "DEGRADED"
        return "OPERATIONAL"

    @property
    def reasons(self) -> list[str]:
        return [*self._inhibit.values(), *self._degrade.values()]

    def inhibit(self, key: str, reason: str) -> bool:
        """Open an inhibiting reason; True if it is new."""
        new = key not in self._inhibit
        self._inhibit[key] = reason
        return new

    def degrade(self, key: str, reason: str) -> bool:
        new = key not in self._degrade
        self._degrade[key] = reason
        return new

    def clear(self, key: str) -> bool:
        """Close a reason of either kind; True if it was open."""
        return self._inhibit.pop(key, None) is not None or self._degrade.pop(key, None) is not None

    def reasons_keys(self) -> list[str]:
        return [*self._inhibit, *self._degrade]

    def is_inhibited(self, key: str | None = None) -> bool:
        return bool(self._inhibit) if key is None else key in self._inhibit
