"""``testbed demo``: measurements go end to end, and the summary says so (table or JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.broker import BrokerInfo
from testbed.demo import summarize
from testbed.supervisor import RunSummary
from wire.messages import ComponentStatus
from wire.settings import BrokerAddress

DEMO_S = 6


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "broker", [pytest.param("mosquitto", marks=pytest.mark.mosquitto), "embedded"]
)
def test_demo_json_reports_measurements_end_to_end(broker: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "testbed",
            "demo",
            "--json",
            "--duration",
            str(DEMO_S),
            "--broker",
            broker,
            "--rate",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert summary["ok"] is True
    assert summary["broker"] == broker
    assert summary["samples_sent"] > 0
    assert summary["accepted"] > 0
    assert summary["conversions"] > 0
    assert summary["records_stored"] > 0
    assert summary["records_acked"] > 0
    assert summary["rejected"] == 0
    assert set(summary["software_ids"]) == {
        "storage", "processing", "mother-unit", "sensor-1", "portal"
    }
    assert summary["empty_stages"] == []


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_demo_prints_a_summary_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "testbed", "demo", "--duration", "4", "--broker", "embedded"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stderr
    for line in (
        "samples sent",
        "samples accepted",
        "conversions",
        "records stored",
        "records acknowledged",
        "logbook size",
        "event counter",
        "software id mother-unit",
        "broker",
    ):
        assert line in result.stdout


def _status(component: str, cid: str, **counters: int) -> ComponentStatus:
    return ComponentStatus(
        component=component,
        component_id=cid,
        online=False,
        time=1.0,
        pid=1,
        counters=counters,
    )


def test_summary_names_the_stage_that_had_nothing(tmp_path: Path) -> None:
    run = RunSummary(
        run_id="r",
        dir=tmp_path,
        instrument="gm-0001",
        broker=BrokerInfo(kind="embedded", address=BrokerAddress(host="127.0.0.1", port=1)),
        statuses={
            "sensor-1": _status("remote_sensor", "sensor-1", sent=10),
            "mother-unit": _status("mother_unit", "mother-unit", accepted=10, records_acked=0),
            "processing": _status("remote_processing", "processing", conversions=10),
            "storage": _status("remote_storage", "storage", records_stored=0),
        },
        state=None,
        elapsed_s=1.0,
        stopped_by="duration",
        rows=[],
    )
    summary = summarize(run)
    assert not summary.ok
    assert summary.empty_stages == [
        "storage (records stored)",
        "mother unit (records acknowledged by storage)",
    ]
