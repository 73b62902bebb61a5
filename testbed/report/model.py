"""The evidence report as data: scenario results judged against the catalogue (issue 8).

WELMEC 7.3 §2: compare the design with the generalized architecture, find the
applicable WELMEC 7.2 requirements of each remote module, check them, assess
the risk against the attack vectors. :func:`build` does that with the results
of a scenario run (:class:`~simulations.results.RunReport`) and the evidence
catalogue: each requirement of each remote module and each attack vector gets a
status - ``passed`` (every scenario run for it held), ``failed`` (one did not,
or could not be run), ``not covered`` (no scenario of this report gives
evidence for it) or ``not applicable`` (a vector, with the reason) - and every
gap is collected into :attr:`Report.gaps`, so that the renderers can state
plainly what was *not* covered. No I/O here; both renderers read only this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from simulations.catalogue import Catalogue
from simulations.model import Scenario
from simulations.results import (
    ComponentIdentity,
    InstrumentSnapshot,
    LogCheck,
    RunReport,
    ScenarioResult,
    TransmissionDelays,
)
from testbed.report.architecture import MODULES, RemoteModule

Status = Literal["passed", "failed", "not covered", "not applicable"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "not covered", "not applicable")
VERDICTS = ("PASS", "FAIL", "ERROR")
# Attacks on the clocks make T7 delays meaningless by design: shown, not pooled.
CLOCK_VECTOR = "A_RTC"
# Scenarios giving evidence for L6 tamper with the store on purpose, and those replacing
# legally relevant software make it store records the L6 verifier must flag (identifier
# not approved): a failed verification of their store is the attack's evidence.
STORE_ATTACK_REQUIREMENT = "L6"
UNAPPROVED_SOFTWARE_VECTORS = frozenset({"A_SW_REPLACE", "A_BOOT"})
# simulations/evidence.py: a log verified, but only without the provisioned origin.
STRICT_FAILED = "strict check failed"


# The report's sections, in the order of issue 8 (both renderers use these ids and titles).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("instrument", "1. The instrument"),
    ("architecture", "2. The architecture"),
    ("requirements", "3. Applicable requirements"),
    ("risk", "4. Risk assessment"),
    ("logbook", "5. Logbook and stored records"),
    ("delay", "6. Transmission delay (T7)"),
    ("not-covered", "7. What was not covered"),
    ("evidence", "8. Evidence: scenario results"),
)
TITLES = dict(SECTIONS)


def anchor(scenario_id: str) -> str:
    """The id of a scenario's evidence in the report (HTML anchor, Markdown heading)."""
    return f"scenario-{scenario_id}"


@dataclass(frozen=True)
class EvidenceRef:
    """A link to the evidence one scenario gave: its verdict and, in one line, why."""

    scenario: str
    verdict: str
    detection_s: float | None
    why: str


@dataclass(frozen=True)
class RequirementRow:
    requirement: str
    title: str
    source: str
    mitigation: str
    status: Status
    evidence: tuple[EvidenceRef, ...]
    note: str = ""


@dataclass(frozen=True)
class ModuleRequirements:
    module: RemoteModule
    rows: tuple[RequirementRow, ...]


@dataclass(frozen=True)
class VectorRow:
    vector: str
    source: str
    description: str
    applicable: bool
    reason: str
    mitigation: str
    status: Status
    evidence: tuple[EvidenceRef, ...]
    not_run: tuple[str, ...]


@dataclass(frozen=True)
class LogRow:
    """After-run verification of one scenario's logbook and stored records."""

    scenario: str
    verdict: str
    logbook: LogCheck | None
    store: LogCheck | None
    entries: tuple[dict[str, Any], ...]
    store_attacked: bool  # the scenario tampers with the store: a failed check is its evidence


@dataclass(frozen=True)
class DelayRow:
    scenario: str
    delays: TransmissionDelays
    clock_attack: bool


@dataclass(frozen=True)
class DelaySection:
    limit_ms: float | None
    samples_ms: tuple[float, ...]  # pooled from the runs without a clock attack
    rows: tuple[DelayRow, ...]
    count: int
    over_max: int
    negative: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class Gap:
    """One thing the report does not give evidence for, or found wrong."""

    kind: Literal["failed", "requirement", "vector", "not applicable", "not run", "evidence",
                  "scope"]
    subject: str
    text: str
    link: str = ""  # a scenario id whose evidence section explains it


@dataclass(frozen=True)
class InstrumentSection:
    snapshot: InstrumentSnapshot | None
    source: str  # which run (or directory) the snapshot is from
    other_identifiers: tuple[tuple[str, ComponentIdentity], ...]  # not approved, seen in a run
    started_at: str
    elapsed_s: float
    broker: str
    environment: Mapping[str, str]


@dataclass(frozen=True)
class Report:
    title: str
    generated_at: str
    origin: str  # "ran N scenarios" / "rendered from FILE"
    run: RunReport
    counts: Mapping[str, int]  # verdict -> number of scenarios
    instrument: InstrumentSection
    modules: tuple[ModuleRequirements, ...]
    vectors: tuple[VectorRow, ...]
    logs: tuple[LogRow, ...]
    delays: DelaySection
    gaps: tuple[Gap, ...]
    scenarios: tuple[ScenarioResult, ...]
    components_run: frozenset[str] = field(default_factory=frozenset)

    @property
    def ok(self) -> bool:
        return self.counts.get("FAIL", 0) == 0 and self.counts.get("ERROR", 0) == 0

    def requirement_counts(self) -> dict[Status, int]:
        return _count(r.status for m in self.modules for r in m.rows)

    def vector_counts(self) -> dict[Status, int]:
        return _count(v.status for v in self.vectors)


def _count(statuses: Iterable[Status]) -> dict[Status, int]:
    out: dict[Status, int] = dict.fromkeys(STATUSES, 0)
    for s in statuses:
        out[s] += 1
    return out


# -- judging -----------------------------------------------------------------------------


def _why(r: ScenarioResult) -> str:
    if r.error:
        return f"{r.verdict}: {r.error.splitlines()[0]}"
    failed = [e for e in r.expectations if not e.held]
    if failed:
        return "; ".join(
            f"not held: {e.name} (measured {_short(e.measured)}, expected {e.expected})"
            for e in failed
        )
    return r.evidence or "every expectation held"


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ref(r: ScenarioResult) -> EvidenceRef:
    return EvidenceRef(r.id, r.verdict, r.detection_s, _why(r))


def _judge(refs: Sequence[EvidenceRef]) -> Status:
    if not refs:
        return "not covered"
    return "passed" if all(r.verdict == "PASS" for r in refs) else "failed"


def _architectures(
    sid: str, results: Mapping[str, ScenarioResult], registered: Mapping[str, Scenario]
) -> set[str]:
    if sid in results:
        return set(results[sid].architectures)
    if sid in registered:
        return set(registered[sid].architectures)
    return set()


def _belongs(module: RemoteModule, architectures: set[str]) -> bool:
    return module.architectures is None or bool(architectures & {*module.architectures, "all"})


def _requirement_row(
    module: RemoteModule,
    rid: str,
    catalogue: Catalogue,
    results: Mapping[str, ScenarioResult],
    registered: Mapping[str, Scenario],
) -> RequirementRow:
    entry = catalogue.requirements[rid]
    listed = list(entry.scenarios)
    relevant = [s for s in listed if _belongs(module, _architectures(s, results, registered))]
    # A failure is never hidden: one whose architecture no module carrying this
    # requirement has (e.g. T4 by a storage scenario, 4.2) counts in each of them.
    homes = [m for m in MODULES if rid in m.requirements]
    stray = [
        s for s in listed
        if s in results and results[s].verdict != "PASS" and s not in relevant
        and not any(_belongs(m, _architectures(s, results, registered)) for m in homes)
    ]
    refs = tuple(_ref(results[s]) for s in [*relevant, *stray] if s in results)
    not_run = [s for s in relevant if s not in results]
    notes = []
    if stray:
        notes.append(f"failed in a scenario of another architecture: {', '.join(stray)}")
    if not listed:
        notes.append(f"no scenario: {entry.not_covered}")
    elif not relevant:
        notes.append(f"no scenario for {module.title} ({module.section}); evidence exists only "
                     f"for other architectures: {', '.join(listed)}")
    elif len(refs) == len(stray):
        notes.append(f"its scenarios were not run in this report: {', '.join(not_run)}")
    elif not_run:
        notes.append(f"{len(relevant) - len(not_run)} of {len(relevant)} scenarios run; "
                     f"not run: {', '.join(not_run)}")
    return RequirementRow(rid, entry.title, entry.source, entry.mitigation, _judge(refs), refs,
                          "; ".join(notes))


def _vector_row(
    name: str, catalogue: Catalogue, results: Mapping[str, ScenarioResult]
) -> VectorRow:
    v = catalogue.vectors[name]
    refs = tuple(_ref(results[s]) for s in v.scenarios if s in results)
    status: Status = _judge(refs) if v.applicable else "not applicable"
    return VectorRow(
        vector=name,
        source=v.source,
        description=v.description,
        applicable=v.applicable,
        reason=v.reason,
        mitigation=v.mitigation,
        status=status,
        evidence=refs,
        not_run=tuple(s for s in v.scenarios if s not in results),
    )


# -- the instrument, the logs, the delays ----------------------------------------------------


def _instrument(run: RunReport) -> InstrumentSection:
    snapshot: InstrumentSnapshot | None = None
    source = ""
    if run.reference is not None:
        snapshot, source = run.reference.instrument, f"testbed directory {run.reference.dir}"
    else:
        # The type as approved: the first run that ended OPERATIONAL with every identifier
        # approved (an attack's own run shows its effect, not the type).
        candidates = [r for r in run.results if r.instrument is not None]
        good = [
            r for r in candidates
            if r.instrument is not None and r.instrument.components
            and not r.instrument.approval_error
            and all(c.approved is not False for c in r.instrument.components)
        ]
        calm = [r for r in good if r.instrument is not None
                and r.instrument.state == "OPERATIONAL"]
        chosen = (calm or good or candidates)[:1]
        if chosen:
            snapshot, source = chosen[0].instrument, f"scenario {chosen[0].id}"
    others = tuple(
        (r.id, c)
        for r in run.results
        if r.instrument is not None
        for c in r.instrument.components
        if c.approved is False
    )
    return InstrumentSection(
        snapshot=snapshot,
        source=source,
        other_identifiers=others,
        started_at=run.started_at,
        elapsed_s=run.elapsed_s,
        broker=run.environment.get("broker", run.broker),
        environment=dict(run.environment),
    )


def _logs(run: RunReport) -> tuple[LogRow, ...]:
    rows = [
        LogRow(
            scenario=r.id,
            verdict=r.verdict,
            logbook=r.logbook_check,
            store=r.store_check,
            entries=tuple(r.logbook_entries),
            store_attacked=STORE_ATTACK_REQUIREMENT in r.requirements
            or bool(UNAPPROVED_SOFTWARE_VECTORS & set(r.vectors)),
        )
        for r in run.results
    ]
    if run.reference is not None:
        ref = run.reference
        rows.insert(0, LogRow(
            scenario=f"testbed directory {ref.dir}", verdict="",
            logbook=ref.logbook_check, store=ref.store_check,
            entries=tuple(ref.logbook_entries), store_attacked=False,
        ))
    return tuple(rows)


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


def _delays(run: RunReport) -> DelaySection:
    rows = [
        DelayRow(r.id, r.delays, CLOCK_VECTOR in r.vectors)
        for r in run.results
        if r.delays is not None and r.delays.count
    ]
    if run.reference is not None and run.reference.delays is not None:
        rows.insert(0, DelayRow(f"testbed directory {run.reference.dir}",
                                run.reference.delays, False))
    pooled = [d for row in rows if not row.clock_attack for d in row.delays.samples_ms]
    limits = [row.delays.max_allowed_ms for row in rows if row.delays.max_allowed_ms]
    ordered = sorted(pooled)
    counted = [row.delays for row in rows if not row.clock_attack]
    return DelaySection(
        limit_ms=limits[0] if limits else None,
        samples_ms=tuple(pooled),
        rows=tuple(rows),
        count=sum(d.count for d in counted),
        over_max=sum(d.over_max for d in counted),
        negative=sum(d.negative for d in counted),
        p50_ms=_quantile(ordered, 0.5),
        p99_ms=_quantile(ordered, 0.99),
        max_ms=max((d.max_ms for d in counted if d.max_ms is not None), default=None),
    )


# -- what was not covered ---------------------------------------------------------------


def _failed_gaps(run: RunReport) -> list[Gap]:
    return [
        Gap("failed", r.id,
            f"{r.verdict}: requirement(s) {', '.join(r.requirements)} and attack vector(s) "
            f"{', '.join(r.vectors)} failed - {_why(r)}"
            + (f" (defence expected from: {r.depends_on})" if r.depends_on else ""),
            link=r.id)
        for r in run.results if r.verdict != "PASS"
    ]


def _evidence_gaps(run: RunReport, logs: Sequence[LogRow]) -> list[Gap]:
    out: list[Gap] = []
    missing = [r.id for r in run.results if r.logbook_check is None and r.store_check is None]
    if missing:
        out.append(Gap("evidence", "after-run verification",
                       "these results record no logbook or stored-records verification and no "
                       f"T7 samples (written before issue 8): {', '.join(missing)}"))
    strict: dict[str, list[str]] = {}  # warning -> runs (one finding, not one per run)
    for row in logs:
        for what, check in (("logbook", row.logbook), ("stored records", row.store)):
            if check is None or check.ok is None:
                continue
            if not check.ok and not (what == "stored records" and row.store_attacked):
                out.append(Gap("evidence", f"{what} of {row.scenario}",
                               f"verification FAILED: {'; '.join(check.problems + check.bad)}",
                               link=_link(row.scenario, run)))
            for w in check.warnings:
                if w.startswith(STRICT_FAILED):
                    strict.setdefault(f"{what}: {w.split(' Verified below')[0]}", []).append(
                        row.scenario)
    for text, runs in strict.items():
        out.append(Gap("evidence", text.split(":")[0] + " checkpoints",
                       f"{text} (in {len(runs)} run(s): {', '.join(runs)})"))
    if not run.environment:
        out.append(Gap("evidence", "versions",
                       "the results do not record the broker and library versions used"))
    return out


def _link(subject: str, run: RunReport) -> str:
    return subject if any(r.id == subject for r in run.results) else ""


SCOPE = (
    ("4.3 portal", "the remote portal (legally non-relevant software, 4.3) does not run in the "
     "scenario testbeds: extension S is evidenced only through the mother unit's protective "
     "command interface (scenario unauthorized-commands); the portal's own web defences are "
     "covered by its tests (tests/portal/), not by this report"),
    ("hardware", "the sensor is emulated in software: hardware seals, physical interfaces and "
     "the host operating system are outside this testbed"),
    ("instrument type", "one instrument profile (gas meter with remote volume conversion) on "
     "one machine and one broker; other profiles are not assessed"),
    ("load", "T7 delays are those of the scenarios' own rates (a few samples per second); "
     "delays under load are in docs/performance.md, not here"),
)


def _gaps(
    run: RunReport,
    modules: Sequence[ModuleRequirements],
    vectors: Sequence[VectorRow],
    logs: Sequence[LogRow],
    registered: Mapping[str, Scenario],
) -> tuple[Gap, ...]:
    gaps = _failed_gaps(run)
    seen: set[str] = set()
    for m in modules:
        for row in m.rows:
            if row.status == "not covered":
                gaps.append(Gap("requirement", f"{row.requirement} ({m.module.section})",
                                f"{m.module.title}: {row.note}"))
                seen.add(row.requirement)
    for v in vectors:
        if v.status == "not covered":
            gaps.append(Gap("vector", v.vector,
                            f"applicable, but no scenario for it was run: {', '.join(v.not_run)}"))
        elif v.status == "not applicable":
            gaps.append(Gap("not applicable", v.vector, v.reason))
    ran = {r.id for r in run.results}
    not_run = [s for s in registered if s not in ran]
    if not_run:
        gaps.append(Gap("not run", f"{len(not_run)} of {len(registered)} scenarios",
                        f"not run in this report: {', '.join(sorted(not_run))}"))
    gaps += _evidence_gaps(run, logs)
    gaps += [Gap("scope", subject, text) for subject, text in SCOPE]
    return tuple(gaps)


def build(
    run: RunReport,
    catalogue: Catalogue,
    registered: Sequence[Scenario] = (),
    *,
    origin: str = "",
    now: dt.datetime | None = None,
) -> Report:
    """Judge ``run`` against ``catalogue``; ``registered``: every scenario there is."""
    results = {r.id: r for r in run.results}
    known = {s.id: s for s in registered}
    modules = tuple(
        ModuleRequirements(
            m,
            tuple(
                _requirement_row(m, rid, catalogue, results, known)
                for rid in m.requirements
                if rid in catalogue.requirements
            ),
        )
        for m in MODULES
    )
    vectors = tuple(_vector_row(v, catalogue, results) for v in catalogue.vectors)
    logs = _logs(run)
    counts = {v: sum(r.verdict == v for r in run.results) for v in VERDICTS}
    components = {
        c.kind for r in run.results if r.instrument is not None for c in r.instrument.components
    }
    return Report(
        title="Evidence report: WELMEC 7.3 distributed instrument",
        generated_at=(now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        origin=origin,
        run=run,
        counts=counts,
        instrument=_instrument(run),
        modules=modules,
        vectors=vectors,
        logs=logs,
        delays=_delays(run),
        gaps=_gaps(run, modules, vectors, logs, known),
        scenarios=tuple(run.results),
        components_run=frozenset(components),
    )
