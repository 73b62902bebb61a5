"""``testbed records``: stored records with their verification status (L4, L6).

For a person checking an invoice: each record is traced to the measurement that
produced it (sensor, the sensor's boot and sample number, its creation time, the
software that converted it) and says whether it is proven part of the log the
mother unit signed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from testbed.commands.verify_store import (
    BrokerOption,
    DbOption,
    DirOption,
    JsonOption,
    load_or_exit,
)


def _time(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")


def register(app: typer.Typer) -> None:
    @app.command("records")
    def records(  # noqa: PLR0917 - typer options
        dir: DirOption = Path("run"),
        db: DbOption = None,
        broker: BrokerOption = None,
        first: Annotated[int, typer.Option("--from", min=0, help="First record seq.")] = 0,
        last: Annotated[int | None, typer.Option("--to", min=0, help="Last record seq.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show stored records FROM..TO with their verification status. Exit 1 if any
        shown record is not verified."""
        result = load_or_exit(dir, db, broker, keep_records=True)
        end = max([result.records - 1, *result.bad]) if (result.records or result.bad) else -1
        top = end if last is None else min(last, end)
        rows = []
        for seq in range(first, top + 1):
            rec = result.parsed.get(seq)
            row: dict[str, object] = {"seq": seq, "status": result.status_of(seq)}
            if rec is not None:
                row.update(
                    sensor_id=rec.sensor_id, sample_boot=rec.sample_boot,
                    sample_seq=rec.sample_seq, created_at=_time(rec.created_at),
                    received_at=_time(rec.received_at), vm=rec.vm, vb=rec.vb, p=rec.p, t=rec.t,
                    parameter_version=rec.parameter_version, software_ids=rec.software_ids,
                )
            rows.append(row)
        all_ok = all(r["status"] == "verified" for r in rows)
        if as_json:
            typer.echo(json.dumps({"ok": all_ok, "log_ok": result.ok, "records": rows},
                                  indent=2))
        else:
            t = Table(title=f"Stored records {first}..{top} ({result.source})")
            for col in ("seq", "status", "sensor", "sample (boot:seq)", "created", "Vm m3",
                        "Vb m3", "software"):
                t.add_column(col)
            for r in rows:
                ok = r["status"] == "verified"
                sw = r.get("software_ids")
                t.add_row(
                    str(r["seq"]),
                    f"[green]{r['status']}[/green]" if ok else f"[red]{r['status']}[/red]",
                    str(r.get("sensor_id", "")),
                    f"{r['sample_boot']}:{r['sample_seq']}" if "sample_seq" in r else "",
                    str(r.get("created_at", "")),
                    str(r.get("vm", "")),
                    str(r.get("vb", "")),
                    ", ".join(f"{k}={v[:12]}" for k, v in sw.items())
                    if isinstance(sw, dict) else "",
                )
            Console(width=200).print(t)
            if not result.ok:
                Console().print("[bold red]WARNING: the stored log is corrupted; run "
                                "`testbed verify-store` for the details[/bold red]")
        if not all_ok:
            raise typer.Exit(1)
