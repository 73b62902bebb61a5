"""``testbed up``: run the whole instrument (broker + one OS process per component)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from testbed.broker import BrokerError
from testbed.panel import status_table, view_for
from testbed.supervisor import RunSummary, SupervisorError, UpConfig, new_run_id, run_up
from wire.logs import configure_logging

BrokerOption = Annotated[
    str,
    typer.Option(
        "--broker",
        envvar="TESTBED_BROKER",
        help="auto (Mosquitto if installed, else embedded), mosquitto, embedded, "
        "or mqtt://host:port of a broker you run yourself.",
    ),
]
DirOption = Annotated[
    Path,
    typer.Option("--dir", envvar="TESTBED_DIR", help="Testbed directory: keys, data, logs."),
]
InstrumentOption = Annotated[
    str, typer.Option("--instrument", envvar="TESTBED_INSTRUMENT", help="Instrument id.")
]
RateOption = Annotated[
    float | None,
    typer.Option("--rate", min=0.001, help="Sensor samples per second (component default: 1)."),
]


async def run_until_signal(cfg: UpConfig, console: Console, show: bool = True) -> RunSummary:
    """Run the supervisor; SIGTERM and SIGINT (Ctrl-C) ask it to stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await run_up(cfg, view=view_for(console) if show else None, stop=stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def supervise(cfg: UpConfig, console: Console, show: bool = True) -> RunSummary:
    """Run to the end, or print why it failed and exit with the supervisor's code."""
    configure_logging("supervisor", cfg.dir / "logs", cfg.run_id, console=False)
    try:
        return asyncio.run(run_until_signal(cfg, console, show))
    except SupervisorError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(e.exit_code) from e
    except BrokerError as e:
        console.print(f"[bold red]broker error:[/] {e}", highlight=False)
        raise typer.Exit(4) from e


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        dir: DirOption = Path("run"),
        duration: Annotated[
            float | None,
            typer.Option(
                "--duration", min=0, help="Stop after this many seconds (default: until Ctrl-C)."
            ),
        ] = None,
        rate: RateOption = None,
        broker: BrokerOption = "auto",
        instrument: InstrumentOption = "gm-0001",
    ) -> None:
        """Run the instrument: broker, mother unit, sensor, processing and storage processes.

        Provisions DIR if needed, starts the broker and every component as its own OS
        process, waits until each announced itself online, and shows a live status panel.
        Ctrl-C or SIGTERM stops everything within 5 s (exit 0). If a component dies the
        run stops and names it (exit 3); if startup fails, exit 4.
        Logs: DIR/logs/<run-id>/<component>.jsonl and <component>.console.log.
        """
        console = Console()
        cfg = UpConfig(
            dir=dir.resolve(),
            instrument=instrument,
            broker=broker,
            duration_s=duration,
            rate_hz=rate,
            run_id=new_run_id(),
        )
        console.print(f"testbed up: dir {cfg.dir}, run {cfg.run_id}", highlight=False)
        summary = supervise(cfg, console)
        title = f"final status (stopped by {summary.stopped_by} after {summary.elapsed_s:.1f} s)"
        console.print(status_table(summary.rows, title))
        console.print(
            f"broker: {summary.broker.kind} {summary.broker.url}; "
            f"logs: {cfg.dir / 'logs' / summary.run_id}",
            highlight=False,
        )
