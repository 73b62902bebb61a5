"""``testbed report``: the evidence report for notified bodies (issue 8, testbed/report/).

Runs the scenario catalogue (or ``--scenario ID`` ..., or nothing with ``--from``
a saved result), judges every requirement and attack vector against the
catalogue, and writes ``report.html`` (self-contained), ``report.md`` with its
two SVG figures, and ``results.json`` into ``--out``. ``--dir`` adds a testbed
directory as it is (e.g. of ``testbed up``): its type approval, logbook, stored
records and T7 delays. Exit 0 when the report was written and every scenario
held; 1 when it was written but a scenario failed (the report says which); 2
on usage errors (unknown scenario, unreadable ``--from`` file, no broker).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from security_module.errors import SecurityError
from simulations.catalogue import load
from simulations.evidence import directory_evidence
from simulations.model import Scenario
from simulations.registry import UnknownScenario, all_scenarios, get
from simulations.results import RunReport
from testbed.broker import BrokerError, resolve
from testbed.commands.scenario import run_with_progress
from testbed.report import build, write_report
from testbed.report.model import Report
from testbed.report.wording import headline


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def read_results(path: Path) -> RunReport:
    """A saved ``RunReport`` (``testbed scenario run --json-out`` or a report's results.json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _usage_error(f"cannot read {path}: {e}") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _usage_error(f"{path} is not JSON: {e}") from e
    if not isinstance(data, dict) or data.get("kind") != "scenario_run":
        raise _usage_error(
            f"{path} is not a scenario run result (expected the JSON of "
            "`testbed scenario run --json-out` or a report's results.json)"
        )
    try:
        return RunReport.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _usage_error(
            f"{path} is not a valid scenario run result: {where}: {first['msg']} "
            f"({e.error_count()} problem(s))"
        ) from e


def _select(ids: list[str]) -> list[Scenario]:
    if not ids:
        return all_scenarios()
    try:
        return [get(i) for i in dict.fromkeys(ids)]
    except UnknownScenario as e:
        raise _usage_error(str(e.args[0])) from e


def _with_directory(run: RunReport, directory: Path | None) -> RunReport:
    if directory is None:
        return run
    if not (directory / "manifest.json").is_file():
        raise _usage_error(
            f"{directory} is not a provisioned testbed directory (no manifest.json)"
        )
    try:
        reference = directory_evidence(directory)
    except (SecurityError, OSError, ValueError) as e:
        raise _usage_error(f"cannot read the testbed directory {directory}: {e}") from e
    return run.model_copy(update={"reference": reference})


def _print_outcome(report: Report, paths: list[Path], console: Console) -> None:
    console.print(headline(report), highlight=False)
    for path in paths:
        console.print(f"wrote {path}", highlight=False)
    not_covered = [g for g in report.gaps if g.kind in ("requirement", "vector", "not run")]
    if not_covered:
        console.print(
            f"[yellow]{len(not_covered)} item(s) not covered: see section 7 of the report[/]",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        *,
        dir: Annotated[
            Path | None,
            typer.Option(
                "--dir",
                help="A provisioned testbed directory (e.g. of `testbed up`) to report as it "
                "is: type approval, logbook, stored records, T7 delays.",
            ),
        ] = None,
        out: Annotated[
            Path, typer.Option("--out", help="Where report.html, report.md etc. go.")
        ] = Path("report"),
        from_: Annotated[
            Path | None,
            typer.Option(
                "--from",
                help="Render from saved results (`testbed scenario run --json-out`, or a "
                "report's results.json) without running anything.",
            ),
        ] = None,
        scenario: Annotated[
            list[str] | None,
            typer.Option("--scenario", help="Run only this scenario (repeatable)."),
        ] = None,
        broker: Annotated[
            str, typer.Option(help="mosquitto, embedded or auto (each run starts its own).")
        ] = "auto",
        workdir: Annotated[
            Path | None,
            typer.Option(help="Where the runs' directories go (failed runs are kept there)."),
        ] = None,
    ) -> None:
        """Write the evidence report: requirements, attack vectors and results in one document.

        Exit 0 if written and every scenario held, 1 if written but a scenario failed,
        2 on usage errors.
        """
        console = Console()
        if from_ is not None:
            if scenario:
                raise _usage_error("--from renders saved results; --scenario runs scenarios")
            run = read_results(from_)
            origin = f"rendered from {from_} (nothing run)"
        else:
            scenarios = _select(scenario or [])
            try:
                kind = resolve(broker)
            except BrokerError as e:
                raise _usage_error(str(e)) from e
            run = run_with_progress(
                scenarios, broker=kind, keep=False, workdir=workdir, console=console
            )
            origin = f"ran {len(scenarios)} scenario(s) on fresh testbeds ({kind})"
        run = _with_directory(run, dir)
        built = build(run, load(), all_scenarios(), origin=origin)
        try:
            paths = write_report(built, out)
        except OSError as e:
            raise _usage_error(f"cannot write the report into {out}: {e}") from e
        _print_outcome(built, paths, console)
        failed = [r for r in run.results if not r.passed]
        if failed:
            typer.echo(
                f"report written, but {len(failed)} of {len(run.results)} scenario(s) did not "
                f"pass: {', '.join(f'{r.id} ({r.verdict})' for r in failed)}",
                err=True,
            )
            raise typer.Exit(1)
