"""What a scenario declares: identity, evidence it gives, the testbed it needs, its expectations.

A scenario is an attack (or fault) told as a story - the timeline is the
docstring of its ``attack`` coroutine - run from *outside* the instrument: an
ordinary MQTT client, a file edit, a replaced or extra process, a shifted
clock. It never calls a component's internals. Its verdict comes only from
named expectations, each with a measured value; an expectation the attack did
not measure (because it crashed, or timed out) counts as not held, so a
scenario can never pass by saying nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulations.trial import Trial

Attack = Callable[["Trial"], Awaitable[None]]

# Packages the components run as (``python -m <package>``), by kind of component id.
PACKAGE_OF = {
    "mother-unit": "mother_unit",
    "storage": "remote_storage",
    "processing": "remote_processing",
}


def package_of(component_id: str) -> str:
    """``python -m`` package of a component id (every other id is a sensor slot)."""
    return PACKAGE_OF.get(component_id, "remote_sensor")


@dataclass(frozen=True)
class ExpectationSpec:
    """One named thing that must hold, e.g. ``inhibited_within_1s``."""

    name: str
    description: str


@dataclass(frozen=True)
class TestbedSpec:
    """The instrument a scenario needs; every run gets a fresh one in a temporary directory.

    ``supervised`` components are started and stopped by the supervisor of
    ``testbed up`` (a component that dies ends the run, as in service).
    ``managed`` components are started by the scenario's hands instead, so the
    attack may stop, replace or restart them (a swapped sensor, a changed
    program, a clock set while the device was off); sensors among them are
    paired by an authorized ceremony before the attack, like supervised ones.
    """

    __test__ = False  # not a pytest class

    sensors: int = 1  # approved sensors provisioned (plus one certified spare, never paired)
    rate_hz: float = 5.0
    supervised: tuple[str, ...] = ("storage", "processing", "mother-unit", "sensor-1")
    managed: tuple[str, ...] = ()
    args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # extra flags per component
    heartbeat_s: float = 0.5
    start: bool = True  # False: the scenario needs only provisioned material, no processes

    @property
    def components(self) -> tuple[str, ...]:
        return (*self.supervised, *self.managed)

    def argv_for(self, component_id: str) -> tuple[str, ...]:
        """Flags a component of this testbed starts with (before the scenario changes any)."""
        base: tuple[str, ...] = ("--heartbeat-s", str(self.heartbeat_s))
        if package_of(component_id) == "remote_sensor":
            base += ("--rate-hz", str(self.rate_hz))
        return (*base, *self.args.get(component_id, ()))


@dataclass(frozen=True)
class Scenario:
    """A registered scenario (see :func:`simulations.registry.scenario`)."""

    id: str
    title: str
    vectors: tuple[str, ...]  # WELMEC 7.3 §4.x.7 / §5 attack vectors, e.g. A_Spoofing
    requirements: tuple[str, ...]  # WELMEC 7.2 / MID ids, e.g. P8/U8, T4, MID-8.2
    architectures: tuple[str, ...]  # 4.1, 4.2, 4.4 (or "all")
    testbed: TestbedSpec
    expectations: tuple[ExpectationSpec, ...]
    attack: Attack
    budget_s: float = 20.0  # wall time of the whole run, setup and teardown included
    depends_on: str = ""  # a defence another issue delivers, named in the report

    @property
    def story(self) -> str:
        """The timeline: the attack's docstring."""
        return inspect.cleandoc(self.attack.__doc__ or "")

    @property
    def module(self) -> str:
        return self.attack.__module__
