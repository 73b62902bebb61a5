"""``testbed report`` end to end: real scenarios on Mosquitto, the page in headless Chromium.

Story: on a fresh checkout a tester runs ``testbed report`` for two quick scenarios
(a similar unit swapped in, live; key files copied without their passphrase, offline).
The command shows its progress, runs each on a fresh testbed, and writes report.html
and report.md. The page opens in a browser installed from Debian packages with no
console error and no request leaving the file, shows every main section, and the
verdict counts it shows are those of the JSON results written beside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rep_support import MAIN_SECTIONS, chromium_or_skip, open_report

SCENARIOS = ("similar-sensor-swapped", "key-files-without-passphrase")
DEADLINE_S = 60


def _run_report(out: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "testbed", "report", "--broker", "mosquitto",
            "--out", str(out), "--workdir", str(workdir)]
    for sid in SCENARIOS:
        argv += ["--scenario", sid]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and every process it started
            stdout, stderr = proc.communicate()
            pytest.fail(f"testbed report took more than {DEADLINE_S} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


@pytest.mark.mosquitto
@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_S + 40)
async def test_report_of_two_scenarios_renders_in_chromium(tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    out = tmp_path / "report"
    workdir = tmp_path / "runs"
    workdir.mkdir()
    done = _run_report(out, workdir)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "wrote" in done.stdout
    assert "report.html" in done.stdout
    assert list(workdir.iterdir()) == []  # passing runs leave nothing behind

    results = json.loads((out / "results.json").read_text("utf-8"))
    assert [r["id"] for r in results["results"]] == list(SCENARIOS)
    expected = {v: sum(r["verdict"] == v for r in results["results"])
                for v in ("PASS", "FAIL", "ERROR")}
    live = results["results"][0]
    assert live["logbook_check"]["size"] > 0  # verified after the run
    assert live["store_check"]["ok"] is True
    assert live["delays"]["count"] > 0
    assert live["delays"]["max_allowed_ms"] == 2000
    assert results["environment"]["broker"].startswith("mosquitto")

    shown = await open_report(chromium, out / "report.html")
    assert shown.console_errors == []
    assert shown.requests == []
    assert shown.sections == MAIN_SECTIONS
    assert shown.counts == expected
    assert shown.verdicts == {r["id"]: r["verdict"] for r in results["results"]}
    md = (out / "report.md").read_text("utf-8")
    assert "## 7. What was not covered" in md
    assert "junk-flood" in md
