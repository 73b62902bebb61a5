"""``testbed logbook show|verify``: read and independently verify the mother unit's logbook.

Both are read-only: they never recover a torn line or otherwise touch the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from security_module.errors import SecurityError
from security_module.logbook import scan_logbook
from security_module.logbook_verify import resolve_logbook_path, verify_logbook
from security_module.provisioning import Provisioned

DirOption = Annotated[
    Path, typer.Option("--dir", help="Provisioned directory (or the logbook's directory).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Show and verify the logbook (audit trail, event counter).",
                        no_args_is_help=True)
    app.add_typer(group, name="logbook")

    @group.command("show")
    def show(dir: DirOption = Path("run"), as_json: JsonOption = False) -> None:
        """List entries: index, time, type, event counter."""
        path = resolve_logbook_path(dir)
        if not path.exists():
            typer.echo(f"error: no logbook at {path}", err=True)
            raise typer.Exit(1)
        scan = scan_logbook(path.read_bytes())
        if as_json:
            typer.echo(json.dumps({
                "path": str(path),
                "entries": [e.model_dump(mode="json") for e in scan.entries],
                "event_counter": scan.entries[-1].event_counter if scan.entries else 0,
                "first_bad_index": scan.first_bad_index,
                "problems": scan.problems,
            }, indent=2))
            return
        table = Table(title=f"Logbook {path}")
        for col in ("index", "time", "type", "event counter", "legally relevant", "data"):
            table.add_column(col)
        for e in scan.entries:
            table.add_row(str(e.index), e.time.isoformat(), e.type, str(e.event_counter),
                          "yes" if e.legally_relevant else "", json.dumps(e.data)[:60])
        console = Console()
        console.print(table)
        if scan.first_bad_index is not None:
            console.print(f"[red]entry {scan.first_bad_index} and later not shown: "
                          f"{scan.problems[0]}[/red]")

    @group.command("verify")
    def verify(dir: DirOption = Path("run"), as_json: JsonOption = False) -> None:
        """Recompute the tree, check the newest signed checkpoint and consistency with
        every earlier one. Exit 0 if all holds, 1 naming the first bad entry."""
        try:
            prov = Provisioned(dir)
            verifier = prov.logbook_verifier()
            origin: str | None = prov.logbook_origin
        except SecurityError as e:
            typer.echo(f"error: {e.message}", err=True)
            raise typer.Exit(1) from e
        result = verify_logbook(dir, verifier, origin=origin)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2))
        else:
            console = Console()
            table = Table(title=f"Logbook verification: {result.path}", show_header=False)
            table.add_row("result", "[green]OK[/green]" if result.ok else "[red]FAILED[/red]")
            table.add_row("entries", str(result.entries))
            table.add_row("event counter", str(result.event_counter))
            table.add_row("signed checkpoints", str(result.checkpoints))
            table.add_row("newest checkpoint size", str(result.newest_checkpoint_size))
            table.add_row("entries after newest checkpoint", str(result.unsigned_entries))
            if result.first_bad_index is not None:
                table.add_row("first bad entry", f"[red]{result.first_bad_index}[/red]")
            for p in result.problems:
                table.add_row("problem", p)
            for w in result.warnings:
                table.add_row("note", w)
            console.print(table)
        if not result.ok:
            if not as_json:
                where = (f"first bad entry: {result.first_bad_index}"
                         if result.first_bad_index is not None else "see problems")
                typer.echo(f"logbook verification FAILED ({where})", err=True)
            raise typer.Exit(1)
