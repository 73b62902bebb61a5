"""``testbed scenario list`` / ``testbed scenario run``: the attack scenarios (simulations/).

``run`` starts a fresh testbed per scenario (temporary directory, free ports),
shows a progress bar, then one table row per scenario: id, attack vector(s),
requirement(s), verdict, detection time and the evidence the instrument gave.
Exit 0 only if every expectation of every scenario held; 1 otherwise; 2 for
an unknown scenario id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulations.evidence import environment
from simulations.model import Scenario
from simulations.registry import UnknownScenario, all_scenarios, get
from simulations.results import RunReport, ScenarioResult
from simulations.runner import run_all
from testbed.broker import BrokerError, resolve

VERDICT_STYLE = {"PASS": "bold green", "FAIL": "bold red", "ERROR": "bold magenta"}


def _describe(s: Scenario) -> dict[str, object]:
    return {
        "id": s.id,
        "title": s.title,
        "vectors": list(s.vectors),
        "requirements": list(s.requirements),
        "architectures": list(s.architectures),
        "expectations": {e.name: e.description for e in s.expectations},
        "budget_s": s.budget_s,
        "depends_on": s.depends_on,
        "story": s.story,
    }


def result_table(results: list[ScenarioResult]) -> Table:
    table = Table(title="scenario results", show_lines=False)
    for col in ("scenario", "attack vector", "requirement", "verdict", "detection", "evidence"):
        table.add_column(col, overflow="fold")
    for r in results:
        failed = [e.name for e in r.expectations if not e.held]
        evidence = r.error or (f"not held: {', '.join(failed)}" if failed else r.evidence)
        table.add_row(
            r.id,
            ", ".join(r.vectors),
            ", ".join(r.requirements),
            f"[{VERDICT_STYLE[r.verdict]}]{r.verdict}[/]",
            "-" if r.detection_s is None else f"{r.detection_s:.2f} s",
            evidence[:160],
        )
    return table


def run_with_progress(
    scenarios: list[Scenario],
    *,
    broker: str,
    keep: bool,
    workdir: Path | None,
    console: Console,
) -> RunReport:
    """Run ``scenarios`` one after the other with a progress bar (also ``testbed report``)."""
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task("scenarios", total=len(scenarios))

        def on_start(s: Scenario) -> None:
            progress.update(bar, description=f"running {s.id}")

        def on_done(r: ScenarioResult) -> None:
            progress.console.print(
                f"[{VERDICT_STYLE[r.verdict]}]{r.verdict}[/] {r.id} "
                f"({r.timings.total_s:.1f} s)",
                highlight=False,
            )
            progress.advance(bar)

        results = asyncio.run(
            run_all(
                scenarios,
                broker=broker,
                keep=keep,
                workdir=workdir,
                on_start=on_start,
                on_done=on_done,
            )
        )
    passed = sum(r.passed for r in results)
    return RunReport(
        started_at=started_at,
        broker=broker,
        environment=environment(broker),
        results=results,
        passed=passed,
        failed=len(results) - passed,
        elapsed_s=round(time.monotonic() - started, 3),
    )


def _select(ids: list[str], run_all_: bool) -> list[Scenario]:
    if run_all_:
        return all_scenarios()
    if not ids:
        raise typer.BadParameter("name scenario ids, or --all")
    try:
        return [get(i) for i in ids]
    except UnknownScenario as e:
        typer.echo(f"error: {e.args[0]}", err=True)
        raise typer.Exit(2) from e


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Attack and fault scenarios (WELMEC 7.3 §4.x.7 and §5), each on a fresh testbed.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="scenario")

    @group.command("list")
    def list_(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the registered scenarios with their attack vectors and requirements."""
        scenarios = all_scenarios()
        if as_json:
            typer.echo(json.dumps([_describe(s) for s in scenarios], indent=2))
            return
        table = Table(title=f"{len(scenarios)} scenarios")
        for col in ("id", "attack vector", "requirement", "title"):
            table.add_column(col, overflow="fold")
        for s in scenarios:
            table.add_row(s.id, ", ".join(s.vectors), ", ".join(s.requirements), s.title)
        Console().print(table)

    @group.command("run")
    def run(
        ids: Annotated[list[str] | None, typer.Argument(help="Scenario ids.")] = None,
        *,
        all_: Annotated[bool, typer.Option("--all", help="Run every scenario.")] = False,
        broker: Annotated[
            str, typer.Option(help="mosquitto, embedded or auto (each run starts its own).")
        ] = "auto",
        json_out: Annotated[
            Path | None, typer.Option("--json-out", help="Write the results as JSON here.")
        ] = None,
        keep: Annotated[
            bool, typer.Option("--keep", help="Keep every run's directory (failed ones always).")
        ] = False,
        workdir: Annotated[
            Path | None, typer.Option(help="Where the runs' temporary directories go.")
        ] = None,
    ) -> None:
        """Run scenarios; exit 0 only if every expectation of every scenario held."""
        scenarios = _select(ids or [], all_)
        try:
            kind = resolve(broker)
        except BrokerError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        console = Console()
        report = run_with_progress(scenarios, broker=kind, keep=keep, workdir=workdir,
                                   console=console)
        results = report.results
        console.print(result_table(results))
        passed = report.passed
        if json_out is not None:
            json_out.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        console.print(
            f"{passed} of {len(results)} scenarios passed in {report.elapsed_s:.0f} s"
            + (f"; results: {json_out}" if json_out else ""),
            highlight=False,
        )
        for r in results:
            if r.dir:
                console.print(f"kept {r.id}: {r.dir}", highlight=False)
        if report.failed:
            raise typer.Exit(1)
