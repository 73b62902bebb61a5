"""``testbed verify-store``: the independent L6 verifier of the remote store.

Needs only the public material in DIR (the mother unit's public key, the type
approval) and the store - its SQLite file or its query interface on the broker.
Exit 0 if every record verifies, 1 if anything is wrong (every bad record listed
with its sequence number and the reason), 2 if it cannot run at all.
"""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mother_unit.records_log import records_origin
from remote_storage.store import StoreError
from security_module.errors import SecurityError
from security_module.provisioning import Provisioned
from testbed.store_query import StoreUnreachable, fetch_store
from testbed.verify_store import StoreVerification, verify_rows, verify_sqlite
from wire.settings import BrokerAddress
from wire.topics import Topics

MAX_SHOWN = 50
EXPORT_FIELDS = (
    "seq", "instrument", "sensor_id", "sample_boot", "sample_seq", "created_at",
    "received_at", "vm", "vb", "p", "t", "parameter_version", "software_ids",
)

DirOption = Annotated[Path, typer.Option("--dir", help="Provisioned testbed directory.")]
DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite file of the store (default DIR/storage/records.sqlite)."),
]
BrokerOption = Annotated[
    str | None, typer.Option("--broker", help="Ask the running store over this broker instead.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def default_db(dir: Path) -> Path:
    return dir / "storage" / "records.sqlite"


def run_verification(
    dir: Path, db: Path | None, broker: str | None, *, keep_records: bool
) -> StoreVerification:
    """Load the public material and verify; raises SecurityError/StoreError/StoreUnreachable."""
    material = Provisioned(dir)
    verifier = material.logbook_verifier()  # the mother unit's public key: no secret (L5)
    instrument = material.instrument_id
    approval = material.type_approval
    approved = {k: list(v) for k, v in approval.software_ids.items()}
    origin = records_origin(instrument)
    if broker is not None:
        address = BrokerAddress.parse(broker)
        rows, checkpoints = asyncio.run(fetch_store(address, Topics(instrument)))
        return verify_rows(rows, checkpoints, verifier=verifier, origin=origin,
                           instrument=instrument, approved=approved, source=broker,
                           keep_records=keep_records)
    return verify_sqlite(db or default_db(dir), verifier=verifier, origin=origin,
                         instrument=instrument, approved=approved, keep_records=keep_records)


def load_or_exit(
    dir: Path, db: Path | None, broker: str | None, *, keep_records: bool
) -> StoreVerification:
    if db is not None and broker is not None:
        typer.echo("error: give --db or --broker, not both", err=True)
        raise typer.Exit(2)
    try:
        return run_verification(dir, db, broker, keep_records=keep_records)
    except (SecurityError, StoreError, StoreUnreachable, OSError, ValueError) as e:
        typer.echo(f"error: cannot verify the store: {e}", err=True)
        raise typer.Exit(2) from e


def print_report(result: StoreVerification, console: Console) -> None:
    table = Table(title=f"Stored data verification (L6): {result.source}", show_header=False)
    table.add_row("result", "[green]OK[/green]" if result.ok else "[red]CORRUPTED[/red]")
    table.add_row("records", str(result.records))
    table.add_row("stored checkpoints", str(result.checkpoints))
    table.add_row("signed log size", str(result.signed_size))
    table.add_row("verified records", f"0..{result.verified_upto - 1}" if result.verified_upto
                  else "none")
    table.add_row("root", result.root)
    table.add_row("time", f"{result.elapsed_s:.3f} s")
    console.print(table)
    for w in result.warnings:
        console.print(f"[bold red]WARNING: {w}[/bold red]")
    for p in result.problems:
        console.print(f"[red]problem: {p}[/red]")
    if result.bad:
        bad = sorted(result.bad.values(), key=lambda b: b.seq)
        t = Table(title=f"{len(bad)} bad record(s)")
        t.add_column("seq", justify="right")
        t.add_column("reason")
        for b in bad[:MAX_SHOWN]:
            t.add_row(str(b.seq), b.reason)
        console.print(t)
        if len(bad) > MAX_SHOWN:
            console.print(f"... and {len(bad) - MAX_SHOWN} more (see --json)")


def export_csv(result: StoreVerification, path: Path) -> int:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_FIELDS)
        for seq in sorted(result.parsed):
            r = result.parsed[seq]
            w.writerow([r.seq, r.instrument, r.sensor_id, r.sample_boot, r.sample_seq,
                        r.created_at, r.received_at, r.vm, "" if r.vb is None else r.vb,
                        r.p, r.t, r.parameter_version,
                        json.dumps(r.software_ids, sort_keys=True)])
    return len(result.parsed)


def register(app: typer.Typer) -> None:
    @app.command("verify-store")
    def verify_store(
        dir: DirOption = Path("run"),
        db: DbOption = None,
        broker: BrokerOption = None,
        as_json: JsonOption = False,
        export: Annotated[
            Path | None, typer.Option("--export", help="Write the verified records as CSV.")
        ] = None,
    ) -> None:
        """Rebuild the records log from the store and check every record, the chain, the
        signed checkpoints and the software identifiers. Exit 0 if all holds, 1 if not."""
        result = load_or_exit(dir, db, broker, keep_records=export is not None)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2))
        else:
            print_report(result, Console())
        if not result.ok:
            named = sorted(result.bad)
            listed = ", ".join(str(s) for s in named[:20]) + (" ..." if len(named) > 20 else "")
            typer.echo(
                "store verification FAILED"
                + (f": bad records {listed}" if named else f": {result.problems[0]}"),
                err=True,
            )
            if export is not None:
                # L6: data detected as corrupted must not be used.
                typer.echo(f"refusing to export {export}: the stored data are corrupted",
                           err=True)
            raise typer.Exit(1)
        if export is not None:
            n = export_csv(result, export)
            typer.echo(f"exported {n} verified records to {export}", err=True)
