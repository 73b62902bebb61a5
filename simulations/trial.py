"""One run of one scenario as the attack sees it: the live testbed, the observer, the record.

The attack coroutine gets a :class:`Trial`. It acts through attackers
(:meth:`attacker`), processes (:attr:`live`), files (:attr:`dir`), and records
what it measured with :meth:`expect`; :meth:`attack_started` and
:meth:`detected` give the detection time. Times in the record are seconds
since the testbed was ready.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from security_module.logbook import LOGBOOK_FILE, LogEntry, scan_logbook
from security_module.provisioning import MOTHER_UNIT
from simulations.attacker import Attacker
from simulations.credentials import credentials_of
from simulations.live import LiveTestbed
from simulations.model import Scenario
from simulations.observe import Observer
from simulations.results import ExpectationResult
from wire.messages import InstrumentState


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@dataclass
class Trial:
    scenario: Scenario
    live: LiveTestbed
    observer: Observer
    ready_at: float = field(default_factory=time.monotonic)
    attack_at: float | None = None
    detection_at: float | None = None
    evidence: str = ""
    logbook_baseline: int = 0
    expectations: dict[str, ExpectationResult] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    # -- where things are ------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.live.dir

    @property
    def topics(self) -> Any:
        return self.live.topics

    def attacker(self, name: str = "attacker", *, credentials: str | None = None) -> Attacker:
        """An ordinary MQTT client on the instrument's broker (``async with``).

        ``credentials``: whose broker password the attacker holds (a user of DIR,
        e.g. a sensor whose device was opened, or the officer's workstation); None:
        none at all, which a hardened broker refuses (issue 10).
        """
        address = self.live.address
        if credentials is not None:
            address = credentials_of(self.dir, address, credentials)
        return Attacker(address, name)

    # -- the record ---------------------------------------------------------------------

    def since_ready(self, at: float | None = None) -> float:
        return round((time.monotonic() if at is None else at) - self.ready_at, 3)

    def mark(self, event: str, **fields: Any) -> None:
        """One line of the attack's timeline (kept in the result)."""
        self.events.append(
            {
                "t_s": self.since_ready(),
                "event": event,
                **{k: _jsonable(v) for k, v in fields.items()},
            }
        )

    def attack_started(self, what: str = "attack") -> float:
        self.attack_at = time.monotonic()
        self.mark("attack_started", what=what)
        return self.attack_at

    def detected(self, at: float, evidence: str) -> None:
        """First evidence of the attack the instrument gave, at monotonic time ``at``."""
        if self.detection_at is None or at < self.detection_at:
            self.detection_at = at
            self.evidence = evidence

    @property
    def detection_s(self) -> float | None:
        if self.detection_at is None or self.attack_at is None:
            return None
        return round(max(0.0, self.detection_at - self.attack_at), 3)

    def expect(
        self, name: str, *, measured: Any, held: bool, expected: str, detail: str = ""
    ) -> bool:
        """Record one expectation of the scenario (declared in ``@scenario``)."""
        specs = {e.name: e for e in self.scenario.expectations}
        if name not in specs:
            raise KeyError(f"{self.scenario.id}: expectation {name!r} is not declared")
        self.expectations[name] = ExpectationResult(
            name=name,
            description=specs[name].description,
            expected=expected,
            measured=_jsonable(measured),
            held=bool(held),
            detail=detail,
        )
        self.mark("measured", expectation=name, measured=measured, held=bool(held))
        return bool(held)

    # -- evidence on disk ------------------------------------------------------------------

    def logbook(self) -> list[LogEntry]:
        """The mother unit's logbook as it is on disk now (read only; a torn tail ignored)."""
        path = self.dir / MOTHER_UNIT / LOGBOOK_FILE
        if not path.exists():
            return []
        return scan_logbook(path.read_bytes()).entries

    def logbook_since_ready(self, types: set[str] | None = None) -> list[LogEntry]:
        return [
            e for e in self.logbook()[self.logbook_baseline :] if types is None or e.type in types
        ]

    # -- waiting on the instrument ---------------------------------------------------------

    async def wait_state(
        self, predicate: Callable[[InstrumentState], bool], timeout_s: float
    ) -> InstrumentState | None:
        """The first state (from now on) satisfying ``predicate``, or None after ``timeout_s``."""
        since = time.monotonic()
        found = await self.observer.wait_for(
            lambda: self.observer.first_state_after(since, predicate) is not None, timeout_s
        )
        seen = self.observer.first_state_after(since, predicate) if found else None
        return None if seen is None else seen.message

    async def settle(self, seconds: float = 1.0) -> InstrumentState | None:
        """Let the instrument publish its state once more after ``seconds``, and return it."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await self.observer.next_state(timeout_s=end - time.monotonic())
        return self.observer.state
