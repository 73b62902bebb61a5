"""``testbed bench``: every section runs and reports sane figures (nothing is timed here).

Figures depend on the machine and its load; the test checks only that each section
is present, that its figures are positive and finite where they must be, that no
sample was lost, and that every target is reported with a status.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed.bench import SECTIONS
from testbed.bench.report import targets
from testbed.bench.stats import percentile, summarize_ms


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
@pytest.mark.mosquitto
@pytest.mark.timeout(150)
def test_bench_quick_json_has_every_section(tmp_path: Path) -> None:
    from testbed.testing import require_mosquitto  # noqa: PLC0415 - skips without it

    require_mosquitto()
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "testbed", "bench", "--quick", "--sensors", "3",
         "--broker", "mosquitto", "--json-out", str(out)],
        capture_output=True, text=True, timeout=140, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for section in SECTIONS:
        assert section in result, section
    base = result["baseline"]
    assert _positive(base["msgs_per_s"])
    assert base["publish_errors"] == 0
    assert _positive(base["rtt_p50_ms"])
    pipe = result["pipeline"]
    assert _positive(pipe["samples_per_s"])
    assert _positive(pipe["mother_cpu_us_per_sample"])
    assert pipe["unacked_after_drain"] == 0
    for load in result["latency"]["loads"]:
        assert load["stored"] >= load["created"] > 0
        assert 0 < load["p50_ms"] <= load["p99_ms"] <= load["p999_ms"] <= load["max_ms"]
    steps = result["scale"]["steps"]
    assert [s["sensors"] for s in steps] == [1]
    assert all(s["lost"] == 0 and s["complete"] for s in steps)
    assert _positive(steps[0]["mother_rss_mib"])
    assert _positive(result["verification"]["l6"]["records_per_s"])
    assert result["verification"]["l6"]["records"] >= 100_000
    assert all(_positive(v) for v in result["verification"]["logbook"].values())
    micro = result["micro"]
    assert all(_positive(v) for v in micro["ops_per_s"].values())
    assert _positive(micro["envelope_open_vs_raw_decrypt"])
    names = {t["name"] for t in result["targets"]}
    assert names == {"pipeline_vs_baseline", "p99_at_1000", "sensors_1000_no_loss",
                     "l6_records_per_s", "envelope_open_vs_raw"}
    assert all(t["status"] in ("met", "missed") for t in result["targets"])
    assert "targets (issue 9)" in proc.stdout


@pytest.mark.timeout(60)
def test_bench_micro_only(tmp_path: Path) -> None:
    out = tmp_path / "micro.json"
    proc = subprocess.run(
        [sys.executable, "-m", "testbed", "bench", "--micro", "--quick", "--json-out", str(out)],
        capture_output=True, text=True, timeout=55, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert "micro" in result
    assert not {"baseline", "pipeline", "latency", "scale", "verification"} & set(result)
    assert [t["name"] for t in result["targets"]] == ["envelope_open_vs_raw"]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 0.5, 0.0), ([5.0], 0.99, 5.0), ([float(i) for i in range(1, 101)], 0.5, 50.0),
     ([float(i) for i in range(1, 101)], 0.99, 99.0), ([1.0, 2.0], 1.0, 2.0)],
    ids=["empty", "one", "median", "p99", "max"],
)
def test_bench_percentile_by_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_bench_targets_report_ratio_and_status() -> None:
    result = {
        "baseline": {"msgs_per_s": 4000.0},
        "pipeline": {"samples_per_s": 1000.0},
        "latency": {"loads": [{"offered_per_s": 1000, **summarize_ms([4.0, 5.0, 20.0])}]},
        "scale": {"steps": [{"sensors": 1000, "lost": 0, "complete": True}]},
        "verification": {"l6": {"records_per_s": 250_000.0}},
        "micro": {"envelope_open_vs_raw_decrypt": 0.6},
    }
    got = {t.name: (t.status, round(t.ratio or 0, 2)) for t in targets(result)}
    assert got == {
        "pipeline_vs_baseline": ("missed", 0.5),
        "p99_at_1000": ("missed", 0.5),
        "sensors_1000_no_loss": ("met", 1.0),
        "l6_records_per_s": ("met", 2.5),
        "envelope_open_vs_raw": ("met", 1.2),
    }
