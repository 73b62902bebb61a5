"""Fixture ``rig``: a provisioned instrument as real processes (helpers in store_rig.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from security_module.provisioning import provision
from storage.store_rig import CONFIG, Rig
from testbed.testing import RunningBroker


@pytest.fixture
def rig(tmp_path: Path, mosquitto_broker: Callable[..., RunningBroker]) -> Iterator[
        Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(rate_hz: float = 100.0, mu_args: tuple[str, ...] = ()) -> Rig:
        d = tmp_path / f"rig{len(rigs)}"
        provision(d)
        r = Rig(d, mosquitto_broker(CONFIG), rate_hz, mu_args)
        rigs.append(r)
        r.up()
        return r

    yield make
    for r in rigs:
        r.close()
