"""Run scenarios: a fresh testbed each, the attack within its time budget, a verdict, cleanup.

Verdict: PASS only if every declared expectation was measured and held; FAIL
if one did not hold or was never measured; ERROR if the testbed did not come
up or the attack crashed (the expectations it measured are still reported).
Every process a run started is gone when :func:`run_scenario` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import structlog

from simulations import evidence
from simulations.credentials import OBSERVER, credentials_of
from simulations.live import LiveTestbed, TestbedNotReady
from simulations.model import Scenario
from simulations.observe import Observer
from simulations.results import (
    ExpectationResult,
    ScenarioResult,
    StateTransition,
    Timings,
    Verdict,
)
from simulations.trial import Trial
from wire.settings import BrokerAddress

log = structlog.get_logger()

NO_BROKER = BrokerAddress(host="127.0.0.1", port=1)


def _verdict(scenario: Scenario, trial: Trial | None, error: str | None) -> list[ExpectationResult]:
    measured = trial.expectations if trial is not None else {}
    out: list[ExpectationResult] = []
    for spec in scenario.expectations:
        if spec.name in measured:
            out.append(measured[spec.name])
        else:
            out.append(
                ExpectationResult(
                    name=spec.name,
                    description=spec.description,
                    expected="measured",
                    measured=None,
                    held=False,
                    detail="not measured" + (f" ({error.splitlines()[0]})" if error else ""),
                )
            )
    return out


async def _attack(scenario: Scenario, live: LiveTestbed, holder: list[Trial]) -> None:
    """Bring the testbed up (within the TaskGroup ``live`` runs in) and run the attack."""
    address = await live.broker_up()
    # Read-only, as the testbed's observer user (issue 10: the broker's ACL).
    observer = Observer(credentials_of(live.dir, address, OBSERVER), live.topics)
    async with asyncio.TaskGroup() as tg:
        watcher = tg.create_task(observer.run(), name="observer")
        try:
            await live.ready(observer)
            trial = Trial(scenario, live, observer, ready_at=time.monotonic())
            trial.logbook_baseline = len(trial.logbook())
            holder.append(trial)
            await scenario.attack(trial)
            await asyncio.sleep(0.3)  # the last state and indication on their way
        finally:
            watcher.cancel()


async def run_scenario(
    scenario: Scenario,
    *,
    broker: str = "mosquitto",
    keep: bool = False,
    workdir: Path | None = None,
    builds: Mapping[str, Path] | None = None,
) -> ScenarioResult:
    """One scenario on a fresh testbed in a temporary directory (or under ``workdir``).

    ``builds``: component id -> overlay directory with a changed (e.g. weakened) build
    of its package, which the run's type approval then lists (see overlay.py).
    """
    started = time.monotonic()
    if workdir is not None:
        # A new --workdir is made, not refused.
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"scenario-{scenario.id}-", dir=workdir))
    live = LiveTestbed(
        scenario.testbed,
        base / "testbed",
        broker=broker,
        run_id=scenario.id,
        builds=dict(builds or {}),
    )
    live.log_dir.mkdir(parents=True)
    with _logging_to(live.log_dir / "scenario-runner.jsonl"):
        return await _run(scenario, live, base, broker=broker, keep=keep, started=started)


async def _run(
    scenario: Scenario,
    live: LiveTestbed,
    base: Path,
    *,
    broker: str,
    keep: bool,
    started: float,
) -> ScenarioResult:
    holder: list[Trial] = []
    error: str | None = None
    attack_started = teardown_started = started
    try:
        live.provision()
        async with asyncio.timeout(scenario.budget_s):
            if scenario.testbed.start:
                async with asyncio.TaskGroup() as tg:
                    live.start(tg)
                    try:
                        await _attack(scenario, live, holder)
                    finally:
                        teardown_started = time.monotonic()
                        await live.shutdown()
            else:
                # Nothing runs: the attack works on files and processes of its own.
                holder.append(Trial(scenario, live, Observer(NO_BROKER, live.topics)))
                attack_started = time.monotonic()
                await scenario.attack(holder[0])
    except* TimeoutError:
        error = f"time budget of {scenario.budget_s:.0f} s exceeded"
    except* TestbedNotReady as eg:
        error = f"testbed not ready: {_leaf(eg)}"
    except* Exception as eg:
        first = _leaf(eg)
        error = f"{type(first).__name__}: {first}"
        log.error("scenario_error", traceback="".join(traceback.format_exception(first)))
    finally:
        if teardown_started == started:
            teardown_started = time.monotonic()
        left = live.kill_leftovers()
        if left:
            error = (error + "; " if error else "") + f"processes left behind: {left}"
    ended = time.monotonic()
    trial = holder[0] if holder else None
    after = _after_run(live, trial if scenario.testbed.start else None)
    result = _result(
        scenario,
        trial=trial,
        error=error,
        broker=broker,
        times=(
            started,
            trial.ready_at if trial and scenario.testbed.start else attack_started,
            teardown_started,
            ended,
        ),
        dir=str(base) if keep else None,
    )
    if after:
        result = result.model_copy(update=after)
    if result.verdict != "PASS" and result.dir is None:
        result = result.model_copy(update={"dir": str(base)})  # keep the evidence of a failure
    if not keep and result.verdict == "PASS":
        shutil.rmtree(base, ignore_errors=True)
    return result


def _after_run(live: LiveTestbed, trial: Trial | None) -> dict[str, object]:
    """Evidence from the run's directory, every process stopped (see evidence.py).

    Never fails the run: the verdict is already decided, and a report without this
    evidence says so.
    """
    try:
        store, delays = evidence.store_check_and_delays(live.dir)
        return {
            "instrument": evidence.instrument_snapshot(
                live.dir, trial.observer if trial else None
            ),
            "logbook_check": evidence.logbook_check(live.dir),
            "store_check": store,
            "delays": delays,
        }
    except Exception:  # evidence collection must never cost the result
        log.error("after_run_evidence_failed", traceback=traceback.format_exc())
        return {}


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """The supervisor's and the runner's structured log of one run, in the run's directory."""
    previous = structlog.get_config()
    with path.open("a", encoding="utf-8") as out:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str),
            ],
            logger_factory=structlog.WriteLoggerFactory(file=out),
            cache_logger_on_first_use=False,
        )
        try:
            yield
        finally:
            structlog.configure(**previous)


def _result(
    scenario: Scenario,
    *,
    trial: Trial | None,
    error: str | None,
    broker: str,
    times: tuple[float, float, float, float],
    dir: str | None,
) -> ScenarioResult:
    started, attack_started, teardown_started, ended = times
    expectations = _verdict(scenario, trial, error)
    verdict: Verdict = "ERROR" if error else "PASS" if all(e.held for e in expectations) else "FAIL"
    return ScenarioResult(
        id=scenario.id,
        title=scenario.title,
        vectors=list(scenario.vectors),
        requirements=list(scenario.requirements),
        architectures=list(scenario.architectures),
        verdict=verdict,
        expectations=expectations,
        detection_s=trial.detection_s if trial else None,
        evidence=trial.evidence if trial else "",
        logbook_entries=[e.model_dump(mode="json") for e in trial.logbook_since_ready()]
        if trial
        else [],
        transitions=_transitions(trial) if trial else [],
        events=trial.events if trial else [],
        timings=Timings(
            setup_s=round(attack_started - started, 3),
            attack_s=round(teardown_started - attack_started, 3),
            teardown_s=round(ended - teardown_started, 3),
            total_s=round(ended - started, 3),
        ),
        broker=broker,
        depends_on=scenario.depends_on,
        error=error,
        dir=dir,
    )


def _leaf(eg: BaseException) -> BaseException:
    while isinstance(eg, BaseExceptionGroup):
        eg = eg.exceptions[0]
    return eg


def _transitions(trial: Trial) -> list[StateTransition]:
    return [
        StateTransition(
            t_s=trial.since_ready(s.at),
            state=s.message.state,
            reasons=list(s.message.reasons),
            event_counter=s.message.event_counter,
        )
        for s in trial.observer.transitions()
    ]


async def run_all(
    scenarios: Sequence[Scenario],
    *,
    broker: str = "mosquitto",
    keep: bool = False,
    workdir: Path | None = None,
    on_done: Callable[[ScenarioResult], None] | None = None,
    on_start: Callable[[Scenario], None] | None = None,
) -> list[ScenarioResult]:
    """Run ``scenarios`` one after the other (each has the machine to itself)."""
    results = []
    for scenario in scenarios:
        if on_start is not None:
            on_start(scenario)
        result = await run_scenario(scenario, broker=broker, keep=keep, workdir=workdir)
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results
