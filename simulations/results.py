"""The JSON of a scenario run (``testbed scenario run --json-out``; read by ``testbed report``).

Stable field names; every time is in seconds. ``detection_s`` is the time from
the start of the attack to the first evidence the instrument gave (a state
change, a counter, a logbook entry), ``None`` when the scenario measures no
detection (e.g. a flood that must change nothing).

The after-run evidence (``instrument``, ``logbook_check``, ``store_check``,
``delays``; see simulations/evidence.py) and the run's ``environment`` were added
for the evidence report (issue 8); they are optional, so results written before
still load (the report then says what they do not record).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["PASS", "FAIL", "ERROR"]
RESULTS_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpectationResult(_Model):
    name: str
    description: str
    expected: str  # what must hold, for a person ("<= 1.0 s", "0")
    measured: Any  # what was measured (JSON value)
    held: bool
    detail: str = ""


class StateTransition(_Model):
    """A change of the instrument's retained state (or its reasons), as the observer saw it."""

    t_s: float  # since the testbed was ready
    state: str
    reasons: list[str]
    event_counter: int


class Timings(_Model):
    setup_s: float = 0.0  # fresh testbed: provision, broker, components, pairing
    attack_s: float = 0.0
    teardown_s: float = 0.0
    total_s: float = 0.0


class ComponentIdentity(_Model):
    """A component of the run as it announced itself, and whether its identifier is approved."""

    component_id: str
    kind: str  # mother_unit, remote_sensor, remote_processing, remote_storage, ...
    software_id: str | None = None
    approved: bool | None = None  # None: not legally relevant (nothing to approve, 4.2)


class InstrumentSnapshot(_Model):
    """The instrument at the end of a run: its type approval and its last retained state."""

    instrument_id: str = ""
    instrument_type: str = ""
    approval_id: str = ""
    approval_issued_at: str = ""
    approval_error: str = ""  # the type approval did not verify (e.g. the attack edited it)
    parameters: dict[str, Any] = Field(default_factory=dict)  # legally relevant, with version
    approved_software_ids: dict[str, list[str]] = Field(default_factory=dict)
    approved_sensor_ids: list[str] = Field(default_factory=list)
    components: list[ComponentIdentity] = Field(default_factory=list)
    identifiers_from: str = ""  # "announced on the broker" or "computed from the installed code"
    state: str = ""  # last instrument state seen ("" if none: no mother unit ran)
    reasons: list[str] = Field(default_factory=list)
    event_counter: int | None = None
    paired_sensors: list[str] = Field(default_factory=list)


class LogCheck(_Model):
    """An independent verification after the run, of the logbook or of the stored records (L6).

    ``ok`` is None when there was nothing to verify (``skipped`` says why).
    """

    ok: bool | None
    size: int = 0  # entries / records
    checkpoints: int = 0  # signed checkpoints found
    checkpoint_size: int | None = None  # size the newest valid signed checkpoint covers
    unsigned: int = 0  # entries or records after the newest signed checkpoint
    root: str = ""
    event_counter: int | None = None  # logbook only
    bad: list[str] = Field(default_factory=list)  # "seq 12: reason" (records) / first bad entry
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    skipped: str = ""


class TransmissionDelays(_Model):
    """T7: receipt on the mother unit's clock minus creation on the sensor's, per stored record."""

    max_allowed_ms: float | None = None  # the type approval's maximum transmission delay
    count: int = 0
    over_max: int = 0  # beyond the maximum
    negative: int = 0  # received before created: the sensor's clock is ahead
    min_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    samples_ms: list[float] = Field(default_factory=list)  # at most 500, evenly spaced by seq


class ScenarioResult(_Model):
    id: str
    title: str
    vectors: list[str]
    requirements: list[str]
    architectures: list[str]
    verdict: Verdict
    expectations: list[ExpectationResult]
    detection_s: float | None = None
    evidence: str = ""  # one line: what the instrument showed
    logbook_entries: list[dict[str, Any]] = Field(default_factory=list)  # produced during the run
    transitions: list[StateTransition] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)  # the attack's own timeline
    timings: Timings = Timings()
    broker: str = ""
    depends_on: str = ""
    error: str | None = None
    dir: str | None = None  # the run's directory, when kept
    # After-run evidence (issue 8), None in results written before it existed.
    instrument: InstrumentSnapshot | None = None
    logbook_check: LogCheck | None = None
    store_check: LogCheck | None = None
    delays: TransmissionDelays | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"


class InstrumentEvidence(_Model):
    """A testbed directory as it is (``testbed report --dir``): the instrument under assessment."""

    dir: str
    instrument: InstrumentSnapshot | None = None
    logbook_check: LogCheck | None = None
    store_check: LogCheck | None = None
    delays: TransmissionDelays | None = None
    logbook_entries: list[dict[str, Any]] = Field(default_factory=list)  # the newest ones


class RunReport(_Model):
    """Everything ``testbed scenario run`` did, in the order it ran."""

    v: int = RESULTS_VERSION
    kind: Literal["scenario_run"] = "scenario_run"
    started_at: str
    broker: str
    software_ids: dict[str, str] = Field(default_factory=dict)
    # Versions used: python, the testbed, the broker (e.g. "mosquitto 2.0.11"), libraries.
    environment: dict[str, str] = Field(default_factory=dict)
    reference: InstrumentEvidence | None = None  # testbed report --dir
    results: list[ScenarioResult]
    passed: int
    failed: int
    elapsed_s: float
