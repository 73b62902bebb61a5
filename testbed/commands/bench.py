"""``testbed bench``: measure the secured pipeline against raw MQTT in one run (issue 9)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from testbed.bench import SECTIONS, BenchConfig, run_bench
from testbed.bench.report import render


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(  # noqa: PLR0917 - typer options
        broker: Annotated[
            str,
            typer.Option("--broker", help="auto (Mosquitto if installed), mosquitto, embedded, "
                         "or mqtt://host:port of a broker you run."),
        ] = "auto",
        quick: Annotated[
            bool, typer.Option("--quick", help="Short runs, 100 sensors: about a minute.")
        ] = False,
        micro: Annotated[
            bool, typer.Option("--micro", help="Only the security-module micro benchmarks.")
        ] = False,
        json_out: Annotated[
            Path | None, typer.Option("--json-out", help="Write every figure to this JSON file.")
        ] = None,
        sensors: Annotated[
            int | None,
            typer.Option("--sensors", min=1, help="Paired sensors (default 1000, --quick 100)."),
        ] = None,
        section: Annotated[
            list[str] | None,
            typer.Option("--section", help=f"Run only these sections: {', '.join(SECTIONS)}."),
        ] = None,
        workdir: Annotated[
            Path | None,
            typer.Option("--workdir", help="Keep the instrument, broker and logs in this "
                         "directory (default: a temporary directory, removed at the end)."),
        ] = None,
        profile: Annotated[
            Path | None,
            typer.Option("--profile", help="py-spy profile of the mother unit during the "
                         "pipeline section: STEM.svg (flame graph) and STEM.txt (top functions)."),
        ] = None,
    ) -> None:
        """Baseline MQTT, pipeline throughput and latency, scale, L6 verification, micro.

        Prints a table per section and each target of issue 9 as met or missed with
        its ratio; ``--json-out`` writes the same figures. Ratios are measured within
        one run, so they hold on any machine; absolute figures depend on its load.
        """
        out = Console(stderr=True)
        unknown = set(section or ()) - set(SECTIONS)
        if unknown:
            raise typer.BadParameter(f"unknown section(s) {sorted(unknown)}; use {SECTIONS}")
        cfg = BenchConfig(broker=broker, quick=quick, micro_only=micro, sensors=sensors,
                          sections=tuple(section) if section else SECTIONS, profile=profile,
                          workdir=workdir)
        result = asyncio.run(run_bench(cfg, lambda msg: out.print(f"[dim]bench:[/] {msg}")))
        Console().print(render(result))
        if json_out is not None:
            json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            out.print(f"figures written to {json_out}")
