"""Fixture ``rig``: a provisioned instrument as real processes (helpers in store_rig.py)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from security_module.provisioning import provision
from storage.store_rig import CONFIG, Rig
from testbed.testing import RunningBroker

CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[CALL_FAILED] = True
    return report


@pytest.fixture
def rig(request: pytest.FixtureRequest, tmp_path: Path,
        mosquitto_broker: Callable[..., RunningBroker]) -> Iterator[Callable[..., Rig]]:
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
        if request.node.stash.get(CALL_FAILED, False):
            # A failure that was no wait_until's (pytest-timeout, an assertion): what the
            # processes were doing at that moment, before they are killed.
            diagnosis = r.diagnose()
            (r.dir / "out" / "diagnosis.txt").write_text(diagnosis)
            print(diagnosis)
        r.close()
