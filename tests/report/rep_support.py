"""Helpers of the evidence report tests (issue 8); no conftest, so nothing shadows another's.

- ``crafted_run()``: a scenario run with one passing and one failing scenario and the
  after-run evidence, for rendering without a testbed;
- ``chromium_or_skip()``: the system Chromium (Debian package ``chromium``) for
  Playwright, as tests/portal/conftest.py finds it: skips without it, fails with
  TESTBED_REQUIRE_BROWSER=1 (CI);
- ``open_report()``: what headless Chromium shows of a report.html;
- ``without_similar_unit_check()``: the weakening of tests/scenarios/test_scn_weakened.py.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simulations.evidence import transmission_delays
from simulations.results import (
    ComponentIdentity,
    ExpectationResult,
    InstrumentSnapshot,
    LogCheck,
    RunReport,
    ScenarioResult,
    StateTransition,
    Timings,
)
from testbed.testing import require_chromium

SID = "ab" * 32


def instrument(state: str = "OPERATIONAL") -> InstrumentSnapshot:
    return InstrumentSnapshot(
        instrument_id="gm-0001",
        instrument_type="gas-meter/remote-volume-conversion",
        approval_id="TA-test",
        approval_issued_at="2026-01-01T00:00:00+00:00",
        parameters={"base_pressure_kpa": 101.325, "max_transmission_delay_ms": 2000,
                    "version": "1"},
        approved_software_ids={"mother_unit": [SID]},
        approved_sensor_ids=["sensor-1"],
        components=[
            ComponentIdentity(component_id="mother-unit", kind="mother_unit", software_id=SID,
                              approved=True),
            ComponentIdentity(component_id="storage", kind="remote_storage",
                              software_id="cd" * 32, approved=None),
        ],
        identifiers_from="announced on the broker",
        state=state,
        event_counter=1,
    )


def passing(sid: str = "forged-sample-injection") -> ScenarioResult:
    return ScenarioResult(
        id=sid, title="forged samples", vectors=["A_Tampering_and_Injection", "A_DATA_GEN",
                                                 "A_Spoofing"],
        requirements=["T2", "T3", "T4", "T6", "P8/U8"], architectures=["4.1"], verdict="PASS",
        expectations=[ExpectationResult(name="none_accepted", description="none accepted",
                                        expected="0", measured=0, held=True)],
        detection_s=0.07, evidence="rejected: authentication",
        logbook_entries=[{"index": 3, "time": "2026-01-01T00:00:01Z", "type": "rejections",
                          "event_counter": 1, "data": {"reason": "<b>authentication</b>"}}],
        transitions=[StateTransition(t_s=0.0, state="OPERATIONAL", reasons=[],
                                     event_counter=1)],
        timings=Timings(setup_s=2.0, attack_s=3.0, teardown_s=0.3, total_s=5.3),
        broker="mosquitto",
        instrument=instrument(),
        logbook_check=LogCheck(ok=True, size=4, checkpoints=2, checkpoint_size=4,
                               event_counter=1, root="ef" * 32),
        store_check=LogCheck(ok=True, size=12, checkpoints=3, checkpoint_size=12),
        delays=transmission_delays([0.8, 1.2, 1.1, 3.5, 900.0], 2000.0),
    )


def failing() -> ScenarioResult:
    """The similar unit is not inhibited (a weakened build): P8/U8, T4, MID-8.2 fail."""
    return ScenarioResult(
        id="similar-sensor-swapped", title="paired sensor replaced by a similar unit",
        vectors=["A_Spoofing", "A_SENSOR_SWAP"], requirements=["P8/U8", "T4", "MID-8.2"],
        architectures=["4.1"], verdict="FAIL",
        expectations=[
            ExpectationResult(name="inhibited_within_1s", description="INHIBITED within 1 s",
                              expected="<= 1.0 s", measured=None, held=False,
                              detail="state stayed OPERATIONAL"),
            ExpectationResult(name="no_sample_accepted", description="nothing accepted",
                              expected="0", measured=0, held=True),
        ],
        timings=Timings(total_s=6.0), broker="mosquitto", dir="/tmp/kept-run",
        instrument=instrument(), logbook_check=LogCheck(ok=True, size=3),
        store_check=LogCheck(ok=True, size=5),
    )


def crafted_run(results: list[ScenarioResult] | None = None) -> RunReport:
    results = [passing(), failing()] if results is None else results
    passed = sum(r.passed for r in results)
    return RunReport(
        started_at="2026-01-01T00:00:00+00:00", broker="mosquitto",
        environment={"python": "3.11", "broker": "mosquitto 2.0.11"},
        results=results, passed=passed, failed=len(results) - passed, elapsed_s=12.0,
    )


# -- the report in a browser ------------------------------------------------------------

def chromium_or_skip() -> str:
    """Path of the system Chromium, Playwright importable (else skip, or fail in CI)."""
    return require_chromium()

CHROMIUM_ARGS = [  # as tests/portal/conftest.py
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Rendered:
    """What headless Chromium showed of a report.html."""

    console_errors: list[str]
    requests: list[str]  # every URL the page asked for besides itself
    sections: list[str]  # ids of the top-level sections, in order
    counts: dict[str, int]  # verdict -> the number the summary shows
    verdicts: dict[str, str]  # scenario id -> verdict of its evidence article
    statuses: dict[str, str]  # "module:requirement" and "vector" -> data-status


async def open_report(chromium: str, path: Path) -> Rendered:
    from playwright.async_api import ConsoleMessage, Request, async_playwright  # noqa: PLC0415

    errors: list[str] = []
    requests: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})

            def on_console(message: ConsoleMessage) -> None:
                if message.type in ("error", "warning"):
                    errors.append(f"{message.type}: {message.text}")

            def on_request(request: Request) -> None:
                if request.url != path.as_uri():
                    requests.append(request.url)

            page.on("console", on_console)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("request", on_request)
            await page.goto(path.as_uri(), wait_until="load")
            sections = await page.eval_on_selector_all(
                "main > section", "els => els.map(e => e.id)")
            counts = {
                v: int(await page.text_content(f"#count-{v}") or "-1")
                for v in ("PASS", "FAIL", "ERROR")
            }
            verdicts = dict(await page.eval_on_selector_all(
                "#evidence article",
                "els => els.map(e => [e.id.replace('scenario-', ''), e.dataset.verdict])"))
            rows = await page.eval_on_selector_all(
                "tr[data-status]",
                "els => els.map(e => [e.dataset.vector || "
                "(e.dataset.module + ':' + e.dataset.requirement), e.dataset.status])")
            return Rendered(errors, requests, sections, counts, verdicts, dict(rows))
        finally:
            await browser.close()


MAIN_SECTIONS = [
    "summary", "instrument", "architecture", "requirements", "risk", "logbook", "delay",
    "not-covered", "evidence",
]


def without_similar_unit_check() -> Callable[[Path], None]:
    """The weakening edit of tests/scenarios/test_scn_weakened.py (reused, not copied)."""
    path = Path(__file__).resolve().parents[1] / "scenarios" / "test_scn_weakened.py"
    spec = importlib.util.spec_from_file_location("_scn_weakened_for_report", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    edit: Callable[[Path], None] = module._without_similar_unit_check
    return edit
