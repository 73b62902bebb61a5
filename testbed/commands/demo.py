"""``testbed demo``: provision a throw-away instrument, run it, show what went end to end."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from testbed.commands.up import BrokerOption, RateOption, supervise
from testbed.demo import summarize, summary_table
from testbed.supervisor import UpConfig, new_run_id


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        duration: Annotated[
            float, typer.Option("--duration", min=1, help="Seconds to run the instrument.")
        ] = 15.0,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the summary as one JSON object, nothing else.")
        ] = False,
        broker: BrokerOption = "auto",
        rate: RateOption = None,
        keep: Annotated[
            bool, typer.Option("--keep", help="Keep the temporary directory (keys, data, logs).")
        ] = False,
    ) -> None:
        """Provision a temporary instrument, run it for a while and summarize the run.

        Shows samples sent, accepted and rejected, conversions, records stored and
        acknowledged, logbook size, event counter, software identifiers and the broker.
        Exit 0 when measurements went end to end (sensor -> mother unit -> processing ->
        storage -> acknowledgement), 1 naming the stage that produced nothing.
        """
        # With --json stdout carries only the JSON; everything else goes to stderr.
        out = Console(stderr=as_json)
        tmp = Path(tempfile.mkdtemp(prefix="testbed-demo-"))
        cfg = UpConfig(
            dir=tmp, broker=broker, duration_s=duration, rate_hz=rate, run_id=new_run_id()
        )
        out.print(f"testbed demo: {duration:g} s in {tmp}", highlight=False)
        ok = False
        try:
            run = supervise(cfg, out, show=not as_json)
            summary = summarize(run)
            ok = summary.ok
            if as_json:
                sys.stdout.write(json.dumps(summary.as_json(), indent=2) + "\n")
            else:
                out.print(summary_table(summary))
            if not ok:
                Console(stderr=True).print(
                    "[bold red]no measurements end to end:[/] nothing at "
                    + "; ".join(summary.empty_stages),
                    highlight=False,
                )
                raise typer.Exit(1)
        finally:
            if keep or not ok:
                Console(stderr=True).print(f"kept {tmp} (logs in {tmp / 'logs'})", highlight=False)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
