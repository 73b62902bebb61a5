"""The evidence report rendered from crafted results: no testbed, no broker (issue 8).

Story: a notified body receives the report of a run in which one defence did not
hold (the similar-unit check). The page must say so where it matters - the
requirement, the attack vector, the summary - with the measured evidence, and list
plainly everything the run did not cover, so that a gap never hides behind a green
page. The same content must come out as Markdown, and both from ``--from`` a saved
result, with clear errors (exit 2, no traceback) for a file that is not one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rep_support import MAIN_SECTIONS, chromium_or_skip, crafted_run, open_report, passing
from typer.testing import CliRunner

from simulations.catalogue import load
from simulations.registry import all_scenarios
from simulations.results import RunReport
from testbed.cli import app
from testbed.report import build, write_report
from testbed.report.model import SECTIONS, Report


def _build(run: RunReport) -> Report:
    return build(run, load(), all_scenarios(), origin="crafted")


def _row(report: Report, module: str, requirement: str) -> tuple[str, str]:
    for m in report.modules:
        if m.module.key == module:
            for r in m.rows:
                if r.requirement == requirement:
                    return r.status, " ".join(e.why for e in r.evidence) + r.note
    raise KeyError((module, requirement))


@pytest.fixture
def run_report() -> RunReport:
    return crafted_run()


def _vector(report: Report, name: str) -> str:
    return next(v.status for v in report.vectors if v.vector == name)


def test_sections_come_in_the_order_of_the_issue(run_report: RunReport, tmp_path: Path) -> None:
    write_report(_build(run_report), tmp_path)
    html = (tmp_path / "report.html").read_text("utf-8")
    md = (tmp_path / "report.md").read_text("utf-8")
    assert [key for key, _ in SECTIONS] == MAIN_SECTIONS
    html_order = [html.index(f"<section id='{key}'>") for key in MAIN_SECTIONS]
    assert html_order == sorted(html_order)
    md_order = [md.index(f"## {title}\n") for _, title in SECTIONS]
    assert md_order == sorted(md_order)
    for name in ("report.html", "report.md", "architecture.svg", "t7-delay.svg", "results.json"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_a_failed_defence_fails_its_requirement_and_vector_with_the_evidence(
    run_report: RunReport,
) -> None:
    report = _build(run_report)
    for module, requirement in (("sensor", "P8/U8"), ("sensor", "T4"),
                                ("instrument", "MID-8.2")):
        status, why = _row(report, module, requirement)
        assert status == "failed", (module, requirement)
        assert "inhibited_within_1s" in why
        assert "<= 1.0 s" in why
    # A vector with a passing and a failing scenario is failed, not passed.
    assert _vector(report, "A_Spoofing") == "failed"
    assert _vector(report, "A_SENSOR_SWAP") == "failed"
    assert _vector(report, "A_DATA_GEN") == "passed"
    assert not report.ok
    failed = [g for g in report.gaps if g.kind == "failed"]
    assert [g.subject for g in failed] == ["similar-sensor-swapped"]
    assert "P8/U8" in failed[0].text
    assert "A_SENSOR_SWAP" in failed[0].text


def test_the_html_shows_the_failure_where_it_matters(run_report: RunReport, tmp_path: Path) -> None:
    write_report(_build(run_report), tmp_path)
    html = (tmp_path / "report.html").read_text("utf-8")
    assert "data-module='sensor' data-requirement='P8/U8' data-status='failed'" in html
    assert "data-vector='A_SENSOR_SWAP' data-status='failed'" in html
    assert "<p class='headline bad'>" in html
    evidence = html[html.index("id='scenario-similar-sensor-swapped'"):]
    assert "state stayed OPERATIONAL" in evidence
    assert "/tmp/kept-run" in evidence  # where the failed run's logs are
    md = (tmp_path / "report.md").read_text("utf-8")
    assert re.search(r"\| P8/U8 \| [^|]+ \| FAILED \|", md)
    assert "FAILED scenarios (1): similar-sensor-swapped" in md


def test_what_was_not_covered_is_stated_plainly(run_report: RunReport) -> None:
    report = _build(run_report)
    by_kind: dict[str, list[str]] = {}
    for g in report.gaps:
        by_kind.setdefault(g.kind, []).append(f"{g.subject}: {g.text}")
    l7 = next(line for line in by_kind["requirement"] if line.startswith("L7 (4.2)"))
    assert "processing-outage" in l7  # the scenario that gives its evidence was not run
    t5 = next(line for line in by_kind["requirement"] if line.startswith("T5 (4.4)"))
    assert "processing-key-files-without-passphrase" in t5  # likewise
    assert any(v.startswith("A_IF_DEBUG: ") and "debug" in v for v in by_kind["not applicable"])
    assert any("A_BOOT" in v for v in by_kind["vector"])  # applicable, not run here
    assert "junk-flood" in by_kind["not run"][0]
    assert any(s.startswith("4.3 portal") for s in by_kind["scope"])
    counts = report.requirement_counts()
    assert counts["not covered"] > 0
    assert counts["failed"] == 3


def test_page_is_self_contained_and_escapes_what_it_shows(
    run_report: RunReport, tmp_path: Path
) -> None:
    write_report(_build(run_report), tmp_path)
    html = (tmp_path / "report.html").read_text("utf-8")
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html
    assert "url(" not in html
    urls = set(re.findall(r"https?://[^\s'\"<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert "default-src 'none'" in html
    # Logbook data come from the instrument: shown literally, never as markup.
    assert "&lt;b&gt;authentication&lt;/b&gt;" in html
    assert "<b>authentication</b>" not in html


def test_results_written_before_issue_8_still_render(tmp_path: Path) -> None:
    old = json.loads(crafted_run([passing()]).model_dump_json())
    del old["environment"], old["reference"]
    for r in old["results"]:
        for key in ("instrument", "logbook_check", "store_check", "delays"):
            del r[key]
    report = _build(RunReport.model_validate(old))
    write_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text("utf-8")
    assert "record no instrument data" in md
    assert "no T7 delays recorded" in (tmp_path / "t7-delay.svg").read_text("utf-8")
    assert any(g.kind == "evidence" and "no logbook" in g.text for g in report.gaps)


# -- the command ------------------------------------------------------------------------


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


def test_from_a_saved_result_exit_1_when_a_scenario_failed(
    run_report: RunReport, tmp_path: Path
) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(run_report.model_dump_json(), "utf-8")
    code, output = _invoke("--from", str(saved), "--out", str(tmp_path / "out"))
    assert code == 1, output
    assert "did not pass: similar-sensor-swapped (FAIL)" in output
    assert (tmp_path / "out" / "report.html").exists()
    # The report's own results.json renders the same report again.
    code, output = _invoke("--from", str(tmp_path / "out" / "results.json"),
                           "--out", str(tmp_path / "again"))
    assert code == 1, output


def test_from_a_result_where_everything_held_exit_0(tmp_path: Path) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(crafted_run([passing()]).model_dump_json(), "utf-8")
    code, output = _invoke("--from", str(saved), "--out", str(tmp_path / "out"))
    assert code == 0, output
    assert "not covered" in output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ('{"kind": "something_else"}', "is not a scenario run result"),
        ('{"kind": "scenario_run", "started_at": 1}', "is not a valid scenario run result"),
    ],
    ids=["missing", "not-json", "other-kind", "invalid"],
)
def test_a_bad_from_file_is_a_usage_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, "utf-8")
    code, output = _invoke("--from", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(run_report: RunReport, tmp_path: Path) -> None:
    saved = tmp_path / "results.json"
    saved.write_text(run_report.model_dump_json(), "utf-8")
    code, output = _invoke("--from", str(saved), "--scenario", "junk-flood")
    assert code == 2
    assert "--from" in output
    code, output = _invoke("--scenario", "no-such-scenario", "--out", str(tmp_path / "x"))
    assert code == 2
    assert "no-such-scenario" in output
    code, output = _invoke("--from", str(saved), "--dir", str(tmp_path))
    assert code == 2
    assert "not a provisioned testbed directory" in output


@pytest.mark.timeout(60)
async def test_crafted_report_in_headless_chromium(run_report: RunReport, tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    write_report(_build(run_report), tmp_path)
    shown = await open_report(chromium, tmp_path / "report.html")
    assert shown.console_errors == []
    assert shown.requests == []  # nothing fetched: self-contained
    assert shown.sections == MAIN_SECTIONS
    assert shown.counts == {"PASS": 1, "FAIL": 1, "ERROR": 0}
    assert shown.verdicts == {r.id: r.verdict for r in run_report.results}
    assert shown.statuses["sensor:P8/U8"] == "failed"
    assert shown.statuses["A_SENSOR_SWAP"] == "failed"
    assert shown.statuses["A_IF_DEBUG"] == "not applicable"
