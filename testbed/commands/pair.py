"""``testbed pair`` / ``testbed unpair``: the authorized pairing ceremony (P8/U8)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer

from security_module.errors import SecurityError
from security_module.pairing_store import PairingStore
from security_module.provisioning import MOTHER_UNIT
from testbed.commands.status import _broker_of
from testbed.commands.up import DirOption
from testbed.pairing_ceremony import CeremonyResult, run_ceremony

BrokerOption = Annotated[
    str | None, typer.Option(help="Broker URL (default: the one `testbed up` in DIR started).")
]
SensorOption = Annotated[str, typer.Option("--sensor", help="Sensor id, e.g. sensor-1.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _run(
    dir: Path, broker: str | None, sensor: str, *, command: str, reason: str, timeout: float
) -> CeremonyResult:
    address = _broker_of(dir, broker)
    try:
        return asyncio.run(
            run_ceremony(dir, address, sensor, command=command, reason=reason, timeout_s=timeout)
        )
    except SecurityError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    except aiomqtt.MqttError as e:
        typer.echo(f"error: cannot reach the broker {address.url()}: {e}", err=True)
        raise typer.Exit(2) from e


def _report(result: CeremonyResult, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.__dict__))
    elif result.ok:
        typer.echo(result.message)
        if result.comparison_code:
            typer.echo(
                f"comparison code: {result.comparison_code}  (check it matches the sensor's)"
            )
    else:
        typer.echo(f"failed: {result.message}", err=True)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("pair")
    def pair(
        sensor: SensorOption,
        *,
        dir: DirOption = Path("run"),
        broker: BrokerOption = None,
        reason: Annotated[str, typer.Option(help="Recorded in the logbook.")] = "re-verification",
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the ceremony.")] = 20.0,
        as_json: JsonOption = False,
        if_unpaired: Annotated[
            bool, typer.Option("--if-unpaired", help="Initial verification: do nothing if the "
                                                     "mother unit in DIR is already paired with "
                                                     "SENSOR (docker-compose).")
        ] = False,
    ) -> None:
        """Authorize and run the pairing of SENSOR with the running mother unit.

        Signs a single-use authorization with the verification authority's key in DIR,
        the mother unit and the sensor run the pairing protocol, and the comparison code
        both sides derived is printed. Logged in the logbook; raises the event counter.
        """
        # The pairing store's peer list is public; no key is read (as in the supervisor).
        if if_unpaired and PairingStore(dir / MOTHER_UNIT, b"").is_paired(sensor):
            typer.echo(f"{sensor} is already paired; nothing to do")
            return
        _report(
            _run(dir, broker, sensor, command="authorize_pairing", reason=reason, timeout=timeout),
            as_json,
        )

    @app.command("unpair")
    def unpair(
        sensor: SensorOption,
        *,
        dir: DirOption = Path("run"),
        broker: BrokerOption = None,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 10.0,
        as_json: JsonOption = False,
    ) -> None:
        """Authorize un-pairing SENSOR: the mother unit deletes its key (logged, counted)."""
        _report(
            _run(dir, broker, sensor, command="unpair", reason="un-pairing", timeout=timeout),
            as_json,
        )
