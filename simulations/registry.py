"""The scenario registry: ``@scenario(...)`` on an attack coroutine registers it.

Scenario modules live in :mod:`simulations.scenarios`, one per attack; they
are imported on first use, so ``testbed scenario list`` and the catalogue
check see exactly what ``testbed scenario run --all`` runs.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping

from simulations.model import Attack, ExpectationSpec, Scenario, TestbedSpec

_REGISTRY: dict[str, Scenario] = {}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")


class UnknownScenario(KeyError):
    """No scenario has this id."""


def scenario(
    *,
    id: str,
    title: str,
    vectors: Iterable[str],
    requirements: Iterable[str],
    architectures: Iterable[str],
    expectations: Mapping[str, str],
    testbed: TestbedSpec | None = None,
    budget_s: float = 20.0,
    depends_on: str = "",
) -> Callable[[Attack], Attack]:
    """Register the decorated attack as a scenario; ``expectations``: name -> description."""

    def register(attack: Attack) -> Attack:
        if not _ID.match(id):
            raise ValueError(f"scenario id {id!r}: lower-case letters, digits and '-' only")
        if id in _REGISTRY and _REGISTRY[id].attack is not attack:
            raise ValueError(f"scenario id {id!r} registered twice")
        if not (attack.__doc__ or "").strip():
            raise ValueError(f"scenario {id}: the attack's docstring must tell the story")
        _REGISTRY[id] = Scenario(
            id=id,
            title=title,
            vectors=tuple(vectors),
            requirements=tuple(requirements),
            architectures=tuple(architectures),
            testbed=testbed or TestbedSpec(),
            expectations=tuple(ExpectationSpec(n, d) for n, d in expectations.items()),
            attack=attack,
            budget_s=budget_s,
            depends_on=depends_on,
        )
        return attack

    return register


def _load() -> None:
    package = importlib.import_module("simulations.scenarios")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def all_scenarios() -> list[Scenario]:
    """Every registered scenario, in id order."""
    _load()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get(scenario_id: str) -> Scenario:
    _load()
    try:
        return _REGISTRY[scenario_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownScenario(f"no scenario {scenario_id!r}; known: {known}") from None
