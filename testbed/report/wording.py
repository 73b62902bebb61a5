"""The report's words, shared by the Markdown and the HTML renderer so both say the same."""

from __future__ import annotations

import json
from typing import Any

from simulations.results import LogCheck
from testbed.report.model import Gap, Report, Status

STATUS_LABEL: dict[Status, str] = {
    "passed": "evidence passed",
    "failed": "FAILED",
    "not covered": "NOT COVERED",
    "not applicable": "not applicable",
}
GAP_TITLES: dict[str, str] = {
    "failed": "Failed: a defence did not hold (the gaps this run found)",
    "requirement": "Requirements without evidence in this report",
    "vector": "Applicable attack vectors without evidence in this report",
    "not applicable": "Attack vectors judged not applicable (no scenario; the reason)",
    "not run": "Scenarios not run",
    "evidence": "Findings and missing evidence",
    "scope": "Outside the scope of this testbed",
}


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def check_result(check: LogCheck | None, *, attacked: bool = False) -> str:
    """One word for a verification: verified / FAILED / not verified (why)."""
    if check is None:
        return "not recorded"
    if check.ok is None:
        return "not verified"
    if check.ok:
        return "verified" + (" (with a finding)" if _finding(check) else "")
    return "FAILED (expected: the attack's evidence)" if attacked else "FAILED"


def _finding(check: LogCheck) -> bool:
    return any(w.startswith("strict check failed") for w in check.warnings)


def check_detail(check: LogCheck | None) -> str:
    """Sizes, checkpoint and problems of a verification, in one line."""
    if check is None:
        return "these results record no verification"
    if check.ok is None:
        return check.skipped
    parts = [
        f"size {check.size}",
        f"{check.checkpoints} signed checkpoint(s)",
        "newest covers " + ("nothing" if check.checkpoint_size is None
                            else str(check.checkpoint_size)),
        f"{check.unsigned} after it",
    ]
    if check.event_counter is not None:
        parts.append(f"event counter {check.event_counter}")
    if check.root:
        parts.append(f"root {check.root[:16]}…")
    parts += [f"bad: {b}" for b in check.bad[:5]]
    parts += [f"problem: {p}" for p in check.problems[:5]]
    parts += [f"note: {w}" for w in check.warnings[:3]]
    return "; ".join(parts)


def entry_data(entry: dict[str, Any], limit: int = 160) -> str:
    text = json.dumps(entry.get("data", {}), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(report: Report) -> str:
    """The first sentence of the report: never green when something failed or is missing."""
    c = report.counts
    run = sum(c.values())
    req = report.requirement_counts()
    vec = report.vector_counts()
    return (f"{run} scenario(s) run: {c.get('PASS', 0)} passed, {c.get('FAIL', 0)} failed, "
            f"{c.get('ERROR', 0)} could not run. Requirements: {req['passed']} with evidence "
            f"passed, {req['failed']} failed, {req['not covered']} not covered. Attack vectors: "
            f"{vec['passed']} passed, {vec['failed']} failed, {vec['not covered']} not covered, "
            f"{vec['not applicable']} not applicable.")


def gaps_by_kind(report: Report) -> list[tuple[str, list[Gap]]]:
    out = []
    for kind, title in GAP_TITLES.items():
        found = [g for g in report.gaps if g.kind == kind]
        if found:
            out.append((title, found))
    return out


def summary_lines(report: Report) -> list[str]:
    """The gaps of the report, one line per kind (the summary at the top)."""
    out = []
    for kind, label in SUMMARY_LABELS.items():
        subjects = [g.subject for g in report.gaps if g.kind == kind]
        if subjects:
            out.append(f"{label} ({len(subjects)}): {', '.join(subjects)}")
    return out


SUMMARY_LABELS = {
    "failed": "FAILED scenarios",
    "requirement": "requirements not covered",
    "vector": "applicable attack vectors not covered",
    "not applicable": "attack vectors not applicable",
    "not run": "scenarios not run",
    "evidence": "findings",
}
