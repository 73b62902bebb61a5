"""The evidence catalogue agrees with the registered scenarios (issue 7, "Done when")."""

from __future__ import annotations

import pytest

from simulations.catalogue import REQUIRED_VECTORS, load, problems
from simulations.registry import all_scenarios


def test_catalogue_is_consistent_with_the_scenarios() -> None:
    assert problems(load(), all_scenarios()) == []


def test_every_applicable_vector_has_a_scenario() -> None:
    catalogue = load()
    for name in REQUIRED_VECTORS:
        vector = catalogue.vectors[name]
        assert vector.scenarios or (not vector.applicable and vector.reason), name


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.id)
def test_scenario_declares_a_story_and_expectations(scenario: object) -> None:
    from simulations.model import Scenario  # noqa: PLC0415

    assert isinstance(scenario, Scenario)
    assert "Timeline" in scenario.story or "t0" in scenario.story
    assert scenario.expectations
    assert scenario.vectors
    assert scenario.requirements


def test_a_dangling_scenario_id_is_reported() -> None:
    text = """
version = 1
[requirements.T1]
title = "x"
source = "x"
mitigation = "x"
scenarios = ["no-such-scenario"]
[vectors.A_DATA_DEL]
source = "x"
mitigation = "x"
applicable = false
reason = "because"
"""
    found = problems(load(text), all_scenarios())
    assert "requirement T1 names unknown scenario no-such-scenario" in found
    assert "vector A_Spoofing missing" in found


def test_an_applicable_vector_without_scenario_is_refused() -> None:
    text = """
version = 1
[requirements]
[vectors.A_BOOT]
source = "x"
mitigation = "x"
"""
    with pytest.raises(ValueError, match="at least one scenario"):
        load(text)
