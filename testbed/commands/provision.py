"""``testbed provision``: create the manufacturer CA, device identities, authority keys
and the signed type approval (security_module.provisioning)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from security_module.errors import SecurityError
from security_module.provisioning import provision
from testbed.broker_config import hand_over
from testbed.material import MANIFEST


def register(app: typer.Typer) -> None:
    @app.command("provision")
    def provision_cmd(
        dir: Annotated[
            Path, typer.Option("--dir", help="Directory to write the key material into.")
        ] = Path("run"),
        *,
        sensors: Annotated[int, typer.Option(min=1, help="Number of approved sensors.")] = 1,
        instrument: Annotated[str, typer.Option(help="Instrument id.")] = "gm-0001",
        force: Annotated[
            bool, typer.Option("--force", help="Replace existing material (drops pairings "
                                                "and the logbook).")
        ] = False,
        keep_existing: Annotated[
            bool, typer.Option("--keep-existing", help="Exit 0 without change if DIR is "
                                                       "already provisioned (docker-compose).")
        ] = False,
        broker_owner: Annotated[
            str | None, typer.Option("--broker-owner", metavar="UID:GID",
                                     help="Give DIR/broker to the broker's user (as root only; "
                                          "eclipse-mosquitto runs as 1883:1883).")
        ] = None,
    ) -> None:
        """Play manufacturer and notified body: keys, certificates, type approval,
        and the broker's users, password file and ACL (DIR/broker)."""
        console = Console()
        if keep_existing and (dir / MANIFEST).exists():
            # A second `docker compose up` must not discard pairings and the logbook.
            console.print(f"{dir} is already provisioned; keeping it")
            return
        try:
            summary = provision(dir, instrument_id=instrument, sensors=sensors, force=force)
        except SecurityError as e:
            typer.echo(f"error: {e.message}", err=True)
            raise typer.Exit(1) from e
        table = Table(title=f"Provisioned {summary.instrument_id} in {summary.directory}")
        table.add_column("device")
        table.add_column("role")
        table.add_column("status")
        for name, role in summary.devices.items():
            if name in summary.approved_sensor_ids:
                status = "approved sensor"
            elif name in summary.spare_sensor_ids:
                status = "spare: certified, NOT approved, not paired"
            else:
                status = "component"
            table.add_row(name, role, status)
        console.print(table)
        sw = Table(title="Approved software identifiers (type approval)")
        sw.add_column("component")
        sw.add_column("short")
        sw.add_column("full")
        for kind, ids in summary.software_ids.items():
            for sid in ids:
                sw.add_row(kind, f"sw:{sid[:8]}", sid)
        console.print(sw)
        console.print(f"{len(summary.files)} files written; key passphrase from: "
                      f"{summary.passphrase_source}")
        if broker_owner is not None:
            uid, _, gid = broker_owner.partition(":")
            # Mosquitto 2 reads its password file after dropping root privileges.
            if hand_over(dir, int(uid), int(gid or uid)):
                console.print(f"{dir / 'broker'} handed to {broker_owner}")
            else:
                console.print(f"not root: {dir / 'broker'} stays with the current user")
