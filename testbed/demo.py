"""The demo's verdict: did measurements travel end to end, and what does the instrument report?

Turns a :class:`RunSummary` into the numbers a visitor asks about (samples
sent, accepted, stored, acknowledged, converted; logbook; software ids) and
decides which stage of sensor -> mother unit -> processing -> storage -> ack
produced nothing, if any.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table

from testbed.supervisor import RunSummary


@dataclass(frozen=True)
class DemoSummary:
    broker: str
    broker_url: str
    run_id: str
    duration_s: float
    samples_sent: int
    accepted: int
    rejected: int
    conversions: int
    records_stored: int
    records_acked: int
    logbook_size: int | None
    event_counter: int | None
    state: str | None
    software_ids: dict[str, str | None]
    empty_stages: list[str]
    portal_url: str | None = None  # the remote portal (issue 11; not legally relevant)

    @property
    def ok(self) -> bool:
        return not self.empty_stages

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def summarize(run: RunSummary) -> DemoSummary:
    by_kind: dict[str, list[dict[str, int]]] = {}
    for status in run.statuses.values():
        by_kind.setdefault(status.component, []).append(status.counters)

    def total(kind: str, counter: str) -> int:
        return sum(c.get(counter, 0) for c in by_kind.get(kind, []))

    mother = next((s for s in run.statuses.values() if s.component == "mother_unit"), None)
    detail = mother.detail if mother is not None else {}
    event_counter = _int(detail.get("event_counter"))
    if event_counter is None and run.state is not None:
        event_counter = run.state.event_counter
    state = detail.get("state")
    stages = {
        "sensor (samples sent)": total("remote_sensor", "sent"),
        "mother unit (samples accepted)": total("mother_unit", "accepted"),
        "processing (conversions)": total("remote_processing", "conversions"),
        "storage (records stored)": total("remote_storage", "records_stored"),
        "mother unit (records acknowledged by storage)": total("mother_unit", "records_acked"),
    }
    return DemoSummary(
        broker=run.broker.kind,
        broker_url=run.broker.url,
        run_id=run.run_id,
        duration_s=run.elapsed_s,
        samples_sent=stages["sensor (samples sent)"],
        accepted=stages["mother unit (samples accepted)"],
        rejected=sum(s.counters.get("rejected", 0) for s in run.statuses.values()),
        conversions=stages["processing (conversions)"],
        records_stored=stages["storage (records stored)"],
        records_acked=stages["mother unit (records acknowledged by storage)"],
        logbook_size=_int(detail.get("logbook_size")),
        event_counter=event_counter,
        state=None if state is None else str(state),
        software_ids={cid: s.software_id for cid, s in run.statuses.items()},
        empty_stages=[stage for stage, n in stages.items() if n <= 0],
        portal_url=run.portal_url,
    )


def summary_table(s: DemoSummary) -> Table:
    table = Table(title="testbed demo", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, object]] = [
        ("samples sent (sensor)", s.samples_sent),
        ("samples accepted (mother unit)", s.accepted),
        ("rejected (all components)", s.rejected),
        ("conversions (remote processing)", s.conversions),
        ("records stored (remote storage)", s.records_stored),
        ("records acknowledged (mother unit)", s.records_acked),
        ("logbook size", "-" if s.logbook_size is None else s.logbook_size),
        ("event counter", "-" if s.event_counter is None else s.event_counter),
        ("instrument state", s.state or "-"),
        *((f"software id {cid}", sid or "-") for cid, sid in s.software_ids.items()),
        ("broker", f"{s.broker} ({s.broker_url})"),
        ("portal (not legally relevant)", s.portal_url or "-"),
        ("run", f"{s.run_id}, {s.duration_s:.1f} s"),
    ]
    for what, value in rows:
        table.add_row(what, str(value))
    return table
