"""Disabling a defence makes its scenario fail (issue 7, "Done when").

The weakened build is a copy of ``mother_unit`` whose similar-unit check is patched
out (a genuine but unpaired sensor no longer inhibits the instrument), run first on
PYTHONPATH for the mother unit only and type-approved as such - the installed
source tree is never touched, and no production code has a switch for this.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulations.overlay import changed_copy
from simulations.registry import get
from simulations.runner import run_scenario

DEFENCE = 'if self.core.status.inhibit(f"pairing:{hello.device_id}", why):'


def _without_similar_unit_check(root: Path) -> None:
    path = root / "pairing_link.py"
    text = path.read_text(encoding="utf-8")
    assert DEFENCE in text, "the defence moved: update this test"
    path.write_text(text.replace(DEFENCE, "if False:  # weakened build: check removed"), "utf-8")


@pytest.mark.mosquitto
@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_similar_unit_scenario_fails_without_the_check(tmp_path: Path) -> None:
    overlay = changed_copy("mother_unit", tmp_path / "weakened", _without_similar_unit_check)
    result = await run_scenario(
        get("similar-sensor-swapped"),
        broker="mosquitto",
        workdir=tmp_path,
        builds={"mother-unit": overlay},
    )
    held = {e.name: e.held for e in result.expectations}
    assert result.error is None, result.error
    assert result.verdict == "FAIL"
    assert held["inhibited_within_1s"] is False
    # The other defences still hold: the similar unit's data are refused all the same.
    assert held["no_sample_accepted"] is True
