"""``report.html``: the evidence report as one self-contained page.

Inline CSS, inline SVG, no script, no font, no external reference: a
Content-Security-Policy of ``default-src 'none'`` in the page itself makes sure
of it (a viewer needs no network access, and nothing in it can run). Every text
taken from the results (scenario ids, logbook data, measured values) is escaped.
Machine-readable hooks for tests and tools: ``section[id]`` per section,
``#count-PASS|FAIL|ERROR``, ``data-status`` on requirement and vector rows,
``data-verdict`` on each scenario's evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from testbed.report.architecture import FIGURE2
from testbed.report.model import SECTIONS, TITLES, EvidenceRef, Report, Status, anchor
from testbed.report.svg import architecture_diagram, delay_plot
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

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1f24; margin: 0; background: #fff; }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { border-bottom: 1px solid #d0d7de; padding-bottom: 8px; }
h1 { font-size: 24px; margin: 20px 0 4px; }
h2 { font-size: 20px; margin-top: 36px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 22px; }
nav a { margin-right: 12px; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
td.mono, code { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.status { font-weight: bold; white-space: nowrap; }
span.passed, span.PASS, b.PASS, span.verified { color: #1b5e20; }
span.failed, span.FAIL, span.ERROR, span.FAILED, b.FAIL, b.ERROR, p.FAIL { color: #b71c1c; }
span.not-covered { color: #8a4b00; }
span.not-applicable { color: #57606a; }
tr.failed td { background: #fdecea; }
tr.not-covered td { background: #fff4e5; }
.headline { font-size: 16px; padding: 10px 14px; border-radius: 6px; margin: 12px 0; }
.headline.bad { background: #fdecea; border: 1px solid #e57373; }
.headline.good { background: #e8f5e9; border: 1px solid #81c784; }
.counts span { display: inline-block; margin-right: 18px; font-size: 16px; }
ul.gaps li { margin-bottom: 4px; }
svg { max-width: 100%; height: auto; border: 1px solid #eef1f4; }
details { margin: 4px 0 10px; }
summary { cursor: pointer; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _cls(status: str) -> str:
    return status.replace(" ", "-")


def _table(header: Iterable[str], rows: Iterable[str], *, cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if head.replace("<th></th>", "") else ""
    return f"<table class='{cls}'>{thead}<tbody>{''.join(rows)}</tbody></table>"


def _row(cells: Iterable[str], *, attrs: str = "") -> str:
    return f"<tr{attrs}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _plain_rows(rows: Iterable[Iterable[object]]) -> list[str]:
    return [_row(_e(v) for v in row) for row in rows]


def _refs(refs: Iterable[EvidenceRef]) -> str:
    out = [
        f"<a href='#{_e(anchor(r.scenario))}'>{_e(r.scenario)}</a> "
        f"<span class='status {_e(r.verdict)}'>{_e(r.verdict)}</span>"
        + (f"<br><small>{_e(r.why)}</small>" if r.verdict != "PASS" else "")
        for r in refs
    ]
    return "<br>".join(out) or "-"


def _status(status: Status) -> str:
    return f"<span class='status {_cls(status)}'>{_e(STATUS_LABEL[status])}</span>"


def _section(key: str, body: str) -> str:
    return f"<section id='{key}'><h2>{_e(TITLES[key])}</h2>{body}</section>"


def _summary(report: Report) -> str:
    good = report.ok and not any(g.kind in ("failed", "requirement", "vector", "not run")
                                 for g in report.gaps)
    counts = "".join(
        f"<span>{_e(v)}: <b id='count-{_e(v)}' class='{_e(v)}'>{n}</b></span>"
        for v, n in report.counts.items()
    )
    gaps = "".join(f"<li>{_e(line)}</li>" for line in summary_lines(report))
    return _section("summary", (
        f"<p class='headline {'good' if good else 'bad'}'>{_e(headline(report))}</p>"
        f"<p class='counts'>{counts}</p>"
        + (f"<p>Not covered or failed (details in <a href='#not-covered'>"
           f"{_e(TITLES['not-covered'])}</a>):</p><ul class='gaps'>{gaps}</ul>" if gaps else "")
    ))


def _approval(approved: bool | None) -> str:
    label = {True: "approved", False: "NOT APPROVED", None: "not legally relevant"}[approved]
    cls = {True: "passed", False: "failed", None: "not-applicable"}[approved]
    return f"<span class='status {cls}'>{label}</span>"


def _instrument(report: Report) -> str:
    i = report.instrument
    s = i.snapshot
    run_rows = [("run started", i.started_at), ("duration", f"{i.elapsed_s:.0f} s"),
                ("broker", i.broker),
                *((f"version: {k}", v) for k, v in i.environment.items() if k != "broker")]
    if s is None:
        return _section("instrument", "<p>The results record no instrument data (written "
                        "before issue 8).</p>" + _table(["", ""], _plain_rows(run_rows)))
    approval = (f"{s.approval_id} issued {s.approval_issued_at}" if not s.approval_error
                else f"DID NOT VERIFY: {s.approval_error}")
    rows = [("instrument type", s.instrument_type or "-"), ("instrument id", s.instrument_id),
            ("type approval", approval),
            ("approved sensors", ", ".join(s.approved_sensor_ids) or "-"),
            ("state at the end", f"{s.state or '-'} {'; '.join(s.reasons)}".strip()),
            ("event counter", "-" if s.event_counter is None else s.event_counter),
            ("taken from", i.source), *run_rows]
    body = _table(["", ""], _plain_rows(rows), cls="instrument")
    body += "<h3>Legally relevant parameters (signed by the notified body)</h3>"
    body += _table(["parameter", "value"], _plain_rows(sorted(s.parameters.items())))
    body += f"<h3>Software identifiers ({_e(s.identifiers_from or 'as recorded')})</h3>"
    body += _table(
        ["component", "kind", "software identifier", "approval"],
        [_row([_e(c.component_id), _e(c.kind),
               f"<code>{_e(c.software_id or '-')}</code>", _approval(c.approved)],
              attrs=f" data-component='{_e(c.component_id)}'") for c in s.components],
        cls="software",
    )
    if i.other_identifiers:
        body += "<h3>Identifiers not approved, seen during attacks</h3>"
        body += _table(["scenario", "component", "software identifier"], [
            _row([f"<a href='#{_e(anchor(sid))}'>{_e(sid)}</a>", _e(c.component_id),
                  f"<code>{_e(c.software_id or '-')}</code>"]) for sid, c in i.other_identifiers
        ])
    body += ("<p>Each scenario ran on a freshly provisioned instrument of this type; the event "
             "counter of each run is in its evidence (section 8).</p>")
    return _section("instrument", body)


def _architecture(report: Report) -> str:
    body = architecture_diagram(report.components_run, report.instrument.broker)
    body += _table(
        ["Figure 2 module", "where", "runs as", "link to the mother unit", "in these runs"],
        _plain_rows(
            (m.name, f"remote ({m.section})" if m.remote else "mother unit", m.runs_as,
             m.link or "-", "yes" if m.kind in report.components_run else "no")
            for m in FIGURE2
        ),
    )
    return _section("architecture", body)


def _requirements(report: Report) -> str:
    body = ""
    for m in report.modules:
        mod = m.module
        body += (f"<h3 id='module-{_e(mod.key)}'>{_e(mod.title)} ({_e(mod.section)}): "
                 f"extension {_e(mod.extension)}</h3>")
        body += _table(
            ["requirement", "title", "status", "evidence", "mitigation", "note"],
            [_row([f"<b>{_e(r.requirement)}</b>", _e(r.title), _status(r.status),
                   _refs(r.evidence), _e(r.mitigation), _e(r.note)],
                  attrs=(f" class='{_cls(r.status)}' data-module='{_e(mod.key)}' "
                         f"data-requirement='{_e(r.requirement)}' data-status='{_e(r.status)}'"))
             for r in m.rows],
            cls="requirements",
        )
    return _section("requirements", body)


def _risk(report: Report) -> str:
    rows = []
    for v in report.vectors:
        detection = "<br>".join(f"{_e(r.scenario)}: {_e(seconds(r.detection_s))}"
                                for r in v.evidence if r.detection_s is not None) or "-"
        applicable = "yes" if v.applicable else f"no: {_e(v.reason)}"
        rows.append(_row(
            [f"<b>{_e(v.vector)}</b><br><small>{_e(v.description)}</small>", _e(v.source),
             applicable, _e(v.mitigation), _refs(v.evidence), _status(v.status), detection],
            attrs=(f" class='{_cls(v.status)}' data-vector='{_e(v.vector)}' "
                   f"data-status='{_e(v.status)}'"),
        ))
    return _section("risk", _table(
        ["attack vector", "source", "applicable", "mitigation in this design", "scenarios run",
         "verdict", "detection time"], rows, cls="vectors"))


def _check_cell(result: str) -> str:
    cls = "verified" if result.startswith("verified") else (
        "FAILED" if result.startswith("FAILED") else "not-applicable")
    return f"<span class='status {cls}'>{_e(result)}</span>"


def _logbook(report: Report) -> str:
    body = ("<p>Each run's logbook verified as <code>testbed logbook verify</code> does, its "
            "stored records as <code>testbed verify-store</code> (L6) does, after every "
            "process stopped.</p>")
    body += _table(
        ["run", "logbook", "logbook detail", "stored records", "stored records detail"],
        [_row([_e(row.scenario), _check_cell(check_result(row.logbook)),
               _e(check_detail(row.logbook)),
               _check_cell(check_result(row.store, attacked=row.store_attacked)),
               _e(check_detail(row.store))]) for row in report.logs],
        cls="logs",
    )
    body += "<h3>Logbook entries produced during the runs</h3>"
    for row in report.logs:
        entries = _table(
            ["index", "time", "type", "event counter", "data"],
            [_row([_e(e.get("index")), _e(e.get("time")), _e(e.get("type")),
                   _e(e.get("event_counter")), f"<code>{_e(entry_data(e))}</code>"])
             for e in row.entries],
        ) if row.entries else "<p>none</p>"
        body += (f"<details><summary>{_e(row.scenario)}: {len(row.entries)} entries</summary>"
                 f"{entries}</details>")
    return _section("logbook", body)


def _delay(report: Report) -> str:
    d = report.delays
    body = delay_plot(d.samples_ms, d.limit_ms)
    body += (f"<p>Configured maximum (type approval): <b>{_e(ms(d.limit_ms))}</b>. Runs without "
             f"a clock attack: {d.count} records, p50 {_e(ms(d.p50_ms))}, p99 "
             f"{_e(ms(d.p99_ms))}, max {_e(ms(d.max_ms))}, <b>{d.over_max}</b> beyond the "
             f"maximum, {d.negative} negative (sensor clock ahead). Runs attacking a clock "
             f"(A_RTC) are listed but not pooled into the plot.</p>")
    body += _table(
        ["run", "records", "p50", "p99", "max", "beyond maximum", "negative", "clock attacked"],
        _plain_rows((r.scenario, r.delays.count, ms(r.delays.p50_ms), ms(r.delays.p99_ms),
                     ms(r.delays.max_ms), r.delays.over_max, r.delays.negative,
                     "yes" if r.clock_attack else "no") for r in d.rows),
    )
    return _section("delay", body)


def _not_covered(report: Report) -> str:
    body = ""
    for title, gaps in gaps_by_kind(report):
        items = "".join(
            f"<li data-gap='{_e(g.kind)}'><b>{_e(g.subject)}</b>: {_e(g.text)}"
            + (f" (<a href='#{_e(anchor(g.link))}'>evidence</a>)" if g.link else "") + "</li>"
            for g in gaps
        )
        body += f"<h3>{_e(title)}</h3><ul class='gaps'>{items}</ul>"
    return _section("not-covered", body)


def _evidence(report: Report) -> str:
    body = ""
    for r in report.scenarios:
        body += (f"<article id='{_e(anchor(r.id))}' data-verdict='{_e(r.verdict)}'>"
                 f"<h3>{_e(r.id)}: <span class='status {_e(r.verdict)}'>{_e(r.verdict)}</span>"
                 f"</h3><p>{_e(r.title)}. Vectors: {_e(', '.join(r.vectors))}; requirements: "
                 f"{_e(', '.join(r.requirements))}; architectures: "
                 f"{_e(', '.join(r.architectures))}. Detection: {_e(seconds(r.detection_s))}. "
                 f"Evidence: {_e(r.evidence or '-')}. Time: setup {r.timings.setup_s:.1f} s, "
                 f"attack {r.timings.attack_s:.1f} s, total {r.timings.total_s:.1f} s.</p>")
        if r.error:
            body += f"<p class='FAIL'>Error: <code>{_e(r.error.splitlines()[0])}</code></p>"
        if r.dir:
            body += f"<p>Kept directory (logs, store, logbook): <code>{_e(r.dir)}</code></p>"
        body += _table(
            ["expectation", "held", "expected", "measured", "detail"],
            [_row([_e(e.name), _status("passed" if e.held else "failed"), _e(e.expected),
                   f"<code>{_e(e.measured)}</code>", _e(e.detail)],
                  attrs=f" class='{'passed' if e.held else 'failed'}'")
             for e in r.expectations],
            cls="expectations",
        )
        if r.transitions:
            body += _table(["t (s)", "state", "reasons", "event counter"], _plain_rows(
                (t.t_s, t.state, "; ".join(t.reasons), t.event_counter) for t in r.transitions))
        body += "</article>"
    return _section("evidence", body)


def render_html(report: Report) -> str:
    nav = "".join(f"<a href='#{key}'>{_e(title)}</a>" for key, title in SECTIONS)
    sections = "".join(part(report) for part in (
        _summary, _instrument, _architecture, _requirements, _risk, _logbook, _delay,
        _not_covered, _evidence))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(report.title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(report.title)}</h1><p>Generated {_e(report.generated_at)}; "
        f"{_e(report.origin)}.</p><nav>{nav}</nav></header><main>{sections}</main>"
        "</body></html>\n"
    )
