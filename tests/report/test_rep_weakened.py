"""Breaking one defence makes the report show its requirement and attack vector failed.

The weakened build of tests/scenarios/test_scn_weakened.py (a copy of ``mother_unit``
without the similar-unit check, type-approved as such) runs ``similar-sensor-swapped``
on Mosquitto; its result is saved as JSON and rendered with ``testbed report --from``.
The report must show P8/U8 and T4 of the remote sensor, MID Annex I 8.2, and the
vectors A_SENSOR_SWAP and A_Spoofing as failed, with the measured evidence (the
expectation that did not hold), and exit 1.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rep_support import without_similar_unit_check
from typer.testing import CliRunner

from simulations.overlay import changed_copy
from simulations.registry import get
from simulations.results import RunReport
from simulations.runner import run_scenario
from testbed.cli import app


@pytest.mark.mosquitto
@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_report_shows_the_broken_defence_as_failed(tmp_path: Path) -> None:
    overlay = changed_copy("mother_unit", tmp_path / "weakened", without_similar_unit_check())
    result = await run_scenario(
        get("similar-sensor-swapped"), broker="mosquitto", workdir=tmp_path,
        builds={"mother-unit": overlay},
    )
    assert result.verdict == "FAIL", result.error
    saved = tmp_path / "results.json"
    run = RunReport(started_at=dt.datetime.now(dt.UTC).isoformat(), broker="mosquitto",
                    results=[result], passed=0, failed=1, elapsed_s=result.timings.total_s)
    saved.write_text(run.model_dump_json(indent=2), "utf-8")

    out = tmp_path / "report"
    invoked = CliRunner().invoke(app, ["report", "--from", str(saved), "--out", str(out)])
    assert invoked.exit_code == 1, invoked.output
    html = (out / "report.html").read_text("utf-8")
    for module, requirement in (("sensor", "P8/U8"), ("sensor", "T4"),
                                ("instrument", "MID-8.2")):
        assert (f"data-module='{module}' data-requirement='{requirement}' "
                "data-status='failed'") in html
    for vector in ("A_SENSOR_SWAP", "A_Spoofing"):
        assert f"data-vector='{vector}' data-status='failed'" in html
    # The evidence: the expectation that did not hold, and what the other defences did.
    risk = html[html.index("<section id='risk'>"):html.index("<section id='logbook'>")]
    assert "not held: inhibited_within_1s" in risk
    evidence = html[html.index("id='scenario-similar-sensor-swapped'"):]
    assert "inhibited_within_1s" in evidence
    assert "no_sample_accepted" in evidence
    assert result.dir is not None
    assert result.dir in evidence
    md = (out / "report.md").read_text("utf-8")
    assert "FAILED scenarios (1): similar-sensor-swapped" in md
