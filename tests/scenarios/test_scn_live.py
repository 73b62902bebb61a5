"""Every scenario of the catalogue, each on a fresh testbed with Mosquitto (issue 7).

One test per scenario, bounded by the scenario's own time budget. A scenario
that fails because a defence is missing *today* is listed in KNOWN_GAPS with
the reason: it is an expected failure (xfail, strict), so the day the defence
lands the test turns red until the entry is removed - a gap is never hidden
by a green run, and never forgotten.
"""

from __future__ import annotations

import pytest

from simulations.model import Scenario
from simulations.registry import all_scenarios
from simulations.runner import run_scenario

# scenario id -> the missing defence (each one reported to its issue).
KNOWN_GAPS: dict[str, str] = {}


def _param(s: Scenario) -> object:
    marks = [pytest.mark.mosquitto, pytest.mark.slow, pytest.mark.timeout(s.budget_s + 30)]
    if s.id in KNOWN_GAPS:
        marks.append(pytest.mark.xfail(reason=KNOWN_GAPS[s.id], strict=True))
    return pytest.param(s, id=s.id, marks=marks)


@pytest.mark.parametrize("scenario", [_param(s) for s in all_scenarios()])
async def test_scenario_passes(scenario: Scenario) -> None:
    result = await run_scenario(scenario, broker="mosquitto")
    failed = [
        f"{e.name}: measured {e.measured!r}, expected {e.expected}"
        for e in result.expectations
        if not e.held
    ]
    assert result.verdict == "PASS", f"{result.verdict} {result.error or ''}\n" + "\n".join(failed)
