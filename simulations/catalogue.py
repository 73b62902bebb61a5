"""The evidence catalogue (``simulations/catalogue.toml``): requirements and attack vectors.

Each requirement id (T1–T8, L1–L8, P2/U2, P8/U8, S, MID Annex I 8.2/8.3/7.2) and
each attack vector of WELMEC 7.3 §4.1.7, §4.2.7, §4.4.7 and §5 names the
scenarios that give evidence for it, or says why it does not apply, with the
mitigation in this design. :func:`problems` checks it against the registered
scenarios in both directions, so that nothing is silently missing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulations.model import Scenario

CATALOGUE_FILE = "catalogue.toml"

# WELMEC 7.3 §4.1.7, §4.2.7, §4.4.7 and §5 (plus the 4.1.4 sensor exchange): all must appear.
REQUIRED_VECTORS = (
    "A_Tampering_and_Injection",
    "A_Spoofing",
    "A_SENSOR_SWAP",
    "A_PASSWORD",
    "A_CRYPTO_RET",
    "A_BOOT",
    "A_RTC",
    "A_IF_DEBUG",
    "A_INT_SERIAL",
    "A_INT_PLUGNPLAY",
    "A_WEB_XSS",
    "A_WEB_DOS",
    "A_SW_REPLACE",
    "A_SW_RUNTIME_CONFIGFILES",
    "A_SW_RUNTIME_INTERFACE",
    "A_DATA_GEN",
    "A_DATA_DEL",
)
REQUIRED_REQUIREMENTS = (
    *(f"T{n}" for n in range(1, 9)),
    *(f"L{n}" for n in range(1, 9)),
    "P2/U2",
    "P8/U8",
    "S",
    "MID-8.2",
    "MID-8.3",
    "MID-7.2",
)


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    mitigation: str
    scenarios: list[str] = Field(default_factory=list)


class Requirement(_Entry):
    title: str
    not_covered: str = ""  # why no scenario gives evidence (then another test must)

    @model_validator(mode="after")
    def _covered_or_said_why(self) -> Requirement:
        if not self.scenarios and not self.not_covered:
            raise ValueError("a requirement without scenarios must say why (not_covered)")
        return self


class Vector(_Entry):
    description: str = ""
    applicable: bool = True
    reason: str = ""  # why not applicable

    @model_validator(mode="after")
    def _applicable_has_evidence(self) -> Vector:
        if self.applicable and not self.scenarios:
            raise ValueError("an applicable attack vector needs at least one scenario")
        if not self.applicable and (not self.reason or self.scenarios):
            raise ValueError("a vector that does not apply says why and lists no scenario")
        return self


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    requirements: dict[str, Requirement]
    vectors: dict[str, Vector]

    def scenario_ids(self) -> set[str]:
        entries: Iterable[_Entry] = [*self.requirements.values(), *self.vectors.values()]
        return {s for e in entries for s in e.scenarios}


def _declared(s: Scenario, kind: str) -> tuple[str, ...]:
    return s.requirements if kind == "requirement" else s.vectors


def load(text: str | None = None) -> Catalogue:
    """The catalogue shipped with the package (or ``text``), validated."""
    if text is None:
        text = resources.files("simulations").joinpath(CATALOGUE_FILE).read_text("utf-8")
    return Catalogue.model_validate(tomllib.loads(text))


def problems(catalogue: Catalogue, scenarios: Iterable[Scenario]) -> list[str]:
    """Every inconsistency between the catalogue and the registered scenarios."""
    registered = {s.id: s for s in scenarios}
    out = [f"vector {v} missing" for v in REQUIRED_VECTORS if v not in catalogue.vectors]
    out += [
        f"requirement {r} missing" for r in REQUIRED_REQUIREMENTS if r not in catalogue.requirements
    ]
    return (
        out
        + _listed_but_not_declared(catalogue, registered)
        + _declared_but_not_listed(catalogue, registered)
    )


def _listed_but_not_declared(catalogue: Catalogue, registered: dict[str, Scenario]) -> list[str]:
    out: list[str] = []
    for kind, table in (("requirement", catalogue.requirements), ("vector", catalogue.vectors)):
        for key, entry in table.items():
            for sid in entry.scenarios:
                if sid not in registered:
                    out.append(f"{kind} {key} names unknown scenario {sid}")
                elif key not in (
                    registered[sid].requirements
                    if kind == "requirement"
                    else registered[sid].vectors
                ):
                    out.append(f"{kind} {key} lists {sid}, which does not declare it")
    return out


def _declared_but_not_listed(catalogue: Catalogue, registered: dict[str, Scenario]) -> list[str]:
    out: list[str] = []
    for sid, s in registered.items():
        for r in s.requirements:
            if r not in catalogue.requirements:
                out.append(f"scenario {sid} declares unknown requirement {r}")
            elif sid not in catalogue.requirements[r].scenarios:
                out.append(f"scenario {sid} declares {r}, not listed there in the catalogue")
        for v in s.vectors:
            if v not in catalogue.vectors:
                out.append(f"scenario {sid} declares unknown vector {v}")
            elif sid not in catalogue.vectors[v].scenarios:
                out.append(f"scenario {sid} declares {v}, not listed there in the catalogue")
        if sid not in catalogue.scenario_ids():
            out.append(f"scenario {sid} is in no catalogue entry")
    return out
