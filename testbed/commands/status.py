"""``testbed status``: what the components of a running testbed last said (retained messages)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer
from rich.console import Console

from testbed.board import read_retained, row_for
from testbed.broker_config import OBSERVER, tool_address
from testbed.commands.up import DirOption, InstrumentOption
from testbed.panel import status_table
from testbed.supervisor import STATE_FILE
from wire.settings import BrokerAddress
from wire.topics import Topics


def _broker_of(dir: Path, broker: str | None) -> BrokerAddress:
    if broker:
        return BrokerAddress.parse(broker)
    try:
        return BrokerAddress.parse(json.loads((dir / STATE_FILE).read_text())["broker"])
    except (OSError, ValueError, KeyError) as e:
        raise typer.BadParameter(
            f"no running testbed found in {dir} ({STATE_FILE}); give --broker mqtt://host:port"
        ) from e


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        dir: DirOption = Path("run"),
        broker: Annotated[
            str | None,
            typer.Option(help="Broker URL (default: the one `testbed up` in DIR started)."),
        ] = None,
        instrument: InstrumentOption = "gm-0001",
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
    ) -> None:
        """Show each component's last retained status and the instrument state."""
        # Issue 10: read-only, as the observer user (credentials from DIR, if any).
        address = tool_address(dir, _broker_of(dir, broker), OBSERVER)
        try:
            statuses, state = asyncio.run(read_retained(address, Topics(instrument)))
        except aiomqtt.MqttError as e:
            typer.echo(f"error: cannot read from {address.url()}: {e}", err=True)
            raise typer.Exit(1) from e
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "broker": address.url(),
                        "components": {
                            cid: s.model_dump(mode="json") for cid, s in statuses.items()
                        },
                        "state": state.model_dump(mode="json") if state is not None else None,
                    },
                    indent=2,
                )
            )
            return
        console = Console()
        rows = [row_for(s) for _, s in sorted(statuses.items())]
        console.print(status_table(rows, f"{instrument} on {address.url()}"))
        if state is not None:
            console.print(
                f"instrument state: {state.state}"
                + (f" ({', '.join(state.reasons)})" if state.reasons else "")
                + f"; event counter {state.event_counter}",
                highlight=False,
            )
