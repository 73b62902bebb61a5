"""``report.md``: the evidence report as Markdown (the same content and order as the HTML).

The two figures are files beside it (``architecture.svg``, ``t7-delay.svg``),
referenced relatively, so the directory views offline as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from testbed.report.architecture import FIGURE2
from testbed.report.model import TITLES, EvidenceRef, Report, anchor
from testbed.report.wording import (
    STATUS_LABEL,
    check_detail,
    check_result,
    entry_data,
    gaps_by_kind,
    headline,
    ms,
    seconds,
    summary_lines,
)

ARCHITECTURE_SVG = "architecture.svg"
DELAY_SVG = "t7-delay.svg"
MAX_ENTRIES_SHOWN = 40


def _cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _refs(refs: Iterable[EvidenceRef]) -> str:
    return ", ".join(f"[{r.scenario}](#{anchor(r.scenario)}) {r.verdict}" for r in refs) or "-"


def _section(key: str) -> list[str]:
    return [f'<a id="{key}"></a>', "", f"## {TITLES[key]}", ""]


def _summary(report: Report) -> list[str]:
    out = _section("summary")
    out += [f"**{headline(report)}**", ""]
    out += _table(["verdict", "scenarios"], [(v, n) for v, n in report.counts.items()])
    if report.gaps:
        out += ["Not covered or failed (details in "
                f"[{TITLES['not-covered']}](#not-covered)):", ""]
        out += [f"- {line}" for line in summary_lines(report)]
        out.append("")
    return out


def _instrument(report: Report) -> list[str]:
    i = report.instrument
    out = _section("instrument")
    s = i.snapshot
    rows: list[tuple[str, object]] = [
        ("run started", i.started_at),
        ("duration", f"{i.elapsed_s:.0f} s"),
        ("broker", i.broker),
        *((f"version: {k}", v) for k, v in i.environment.items() if k != "broker"),
    ]
    if s is None:
        out += ["The results record no instrument data (written before issue 8).", ""]
        return out + _table(["", ""], rows)
    rows = [
        ("instrument type", s.instrument_type or "-"),
        ("instrument id", s.instrument_id),
        ("type approval", f"{s.approval_id} issued {s.approval_issued_at}"
         if not s.approval_error else f"DID NOT VERIFY: {s.approval_error}"),
        ("approved sensors", ", ".join(s.approved_sensor_ids) or "-"),
        ("state at the end", f"{s.state or '-'} {'; '.join(s.reasons)}".strip()),
        ("event counter", "-" if s.event_counter is None else s.event_counter),
        ("taken from", i.source),
        *rows,
    ]
    out += _table(["", ""], rows)
    out += ["Legally relevant parameters (signed by the notified body):", ""]
    out += _table(["parameter", "value"], sorted(s.parameters.items()))
    out += [f"Software identifiers ({s.identifiers_from or 'as recorded'}):", ""]
    out += _table(
        ["component", "kind", "software identifier", "approval"],
        [(c.component_id, c.kind, c.software_id or "-", _approval(c.approved))
         for c in s.components],
    )
    if i.other_identifiers:
        out += ["Identifiers not approved, seen during attacks:", ""]
        out += _table(["scenario", "component", "software identifier"],
                      [(f"[{sid}](#{anchor(sid)})", c.component_id, c.software_id or "-")
                       for sid, c in i.other_identifiers])
    out += ["Each scenario ran on a freshly provisioned instrument of this type; the event "
            "counter of each run is in its evidence (section 8).", ""]
    return out


def _approval(approved: bool | None) -> str:
    return {True: "approved", False: "NOT APPROVED", None: "not legally relevant"}[approved]


def _architecture(report: Report) -> list[str]:
    out = _section("architecture")
    out += [f"![generalized architecture, this configuration]({ARCHITECTURE_SVG})", ""]
    out += _table(
        ["Figure 2 module", "where", "runs as", "link to the mother unit", "in these runs"],
        [(m.name, f"remote ({m.section})" if m.remote else "mother unit", m.runs_as,
          m.link or "-", "yes" if m.kind in report.components_run else "no")
         for m in FIGURE2],
    )
    return out


def _requirements(report: Report) -> list[str]:
    out = _section("requirements")
    for m in report.modules:
        mod = m.module
        out += [f"### {mod.title} ({mod.section}) - extension {mod.extension}", ""]
        out += _table(
            ["requirement", "title", "status", "evidence", "mitigation", "note"],
            [(r.requirement, r.title, STATUS_LABEL[r.status], _refs(r.evidence), r.mitigation,
              r.note) for r in m.rows],
        )
    return out


def _risk(report: Report) -> list[str]:
    out = _section("risk")
    out += _table(
        ["attack vector", "source", "applicable", "mitigation", "scenarios run", "verdict",
         "detection"],
        [(v.vector, v.source, "yes" if v.applicable else f"no: {v.reason}", v.mitigation,
          _refs(v.evidence), STATUS_LABEL[v.status],
          ", ".join(f"{r.scenario} {seconds(r.detection_s)}" for r in v.evidence
                    if r.detection_s is not None) or "-")
         for v in report.vectors],
    )
    return out


def _logbook(report: Report) -> list[str]:
    out = _section("logbook")
    out += ["Each run's logbook verified as `testbed logbook verify` does, its stored records "
            "as `testbed verify-store` (L6) does, after every process stopped.", ""]
    out += _table(
        ["run", "logbook", "logbook detail", "stored records", "stored records detail"],
        [(row.scenario, check_result(row.logbook), check_detail(row.logbook),
          check_result(row.store, attacked=row.store_attacked), check_detail(row.store))
         for row in report.logs],
    )
    out += ["### Logbook entries produced during the runs", ""]
    for row in report.logs:
        out += [f"**{row.scenario}**: {len(row.entries)} entries", ""]
        if row.entries:
            shown = row.entries[-MAX_ENTRIES_SHOWN:]
            if len(shown) < len(row.entries):
                out += [f"(the newest {len(shown)} shown)", ""]
            out += _table(
                ["index", "time", "type", "event counter", "data"],
                [(e.get("index"), e.get("time"), e.get("type"), e.get("event_counter"),
                  entry_data(e)) for e in shown],
            )
    return out


def _delay(report: Report) -> list[str]:
    d = report.delays
    out = _section("delay")
    out += [f"![T7 delay distribution]({DELAY_SVG})", ""]
    out += [f"Configured maximum (type approval): {ms(d.limit_ms)}. Runs without a clock "
            f"attack: {d.count} records, p50 {ms(d.p50_ms)}, p99 {ms(d.p99_ms)}, max "
            f"{ms(d.max_ms)}, {d.over_max} beyond the maximum, {d.negative} negative (sensor "
            "clock ahead). Runs attacking a clock (A_RTC) are listed but not pooled.", ""]
    out += _table(
        ["run", "records", "p50", "p99", "max", "beyond maximum", "negative", "clock attacked"],
        [(r.scenario, r.delays.count, ms(r.delays.p50_ms), ms(r.delays.p99_ms),
          ms(r.delays.max_ms), r.delays.over_max, r.delays.negative,
          "yes" if r.clock_attack else "no") for r in d.rows],
    )
    return out


def _not_covered(report: Report) -> list[str]:
    out = _section("not-covered")
    for title, gaps in gaps_by_kind(report):
        out += [f"### {title}", ""]
        for g in gaps:
            link = f" ([evidence](#{anchor(g.link)}))" if g.link else ""
            out.append(f"- **{g.subject}**: {g.text}{link}")
        out.append("")
    return out


def _evidence(report: Report) -> list[str]:
    out = _section("evidence")
    for r in report.scenarios:
        out += [f'<a id="{anchor(r.id)}"></a>', "", f"### {r.id}: {r.verdict}", "",
                f"{r.title}. Vectors: {', '.join(r.vectors)}; requirements: "
                f"{', '.join(r.requirements)}; architectures: {', '.join(r.architectures)}. "
                f"Detection: {seconds(r.detection_s)}. Evidence: {r.evidence or '-'}. "
                f"Time: setup {r.timings.setup_s:.1f} s, attack {r.timings.attack_s:.1f} s, "
                f"total {r.timings.total_s:.1f} s.", ""]
        if r.error:
            out += [f"Error: `{r.error.splitlines()[0]}`", ""]
        if r.dir:
            out += [f"Kept directory (logs, store, logbook): `{r.dir}`", ""]
        out += _table(
            ["expectation", "held", "expected", "measured", "detail"],
            [(e.name, "yes" if e.held else "NO", e.expected, e.measured, e.detail)
             for e in r.expectations],
        )
        if r.transitions:
            out += _table(["t (s)", "state", "reasons", "event counter"],
                          [(t.t_s, t.state, "; ".join(t.reasons), t.event_counter)
                           for t in r.transitions])
    return out


def render_markdown(report: Report) -> str:
    lines = [f"# {report.title}", "",
             f"Generated {report.generated_at}; {report.origin}.", ""]
    for part in (_summary, _instrument, _architecture, _requirements, _risk, _logbook, _delay,
                 _not_covered, _evidence):
        lines += part(report)
    return "\n".join(lines).rstrip() + "\n"
