"""How a running testbed shows itself: a live rich panel on a terminal, log lines elsewhere."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

from testbed.board import Row

REFRESH_PER_S = 2.0


def short_id(software_id: str | None, width: int = 12) -> str:
    if not software_id:
        return "-"
    # "sha256:abcdef..." -> "abcdef..."; the prefix is the same for every component.
    return software_id.split(":", 1)[-1][:width]


def status_table(rows: Sequence[Row], title: str = "") -> Table:
    table = Table(title=title or None, title_justify="left", expand=False)
    table.add_column("component")
    table.add_column("online")
    table.add_column("pid", justify="right")
    table.add_column("software id")
    table.add_column("counters")
    table.add_column("state")
    for row in rows:
        online = "[green]yes[/]" if row.online else "[red]no[/]"
        counters = "  ".join(f"{k}={v}" for k, v in row.counters.items())
        table.add_row(
            row.component_id,
            online,
            str(row.pid or "-"),
            short_id(row.software_id),
            counters,
            row.state or "",
        )
    return table


class StatusView(Protocol):
    """Something that shows the rows while the testbed runs."""

    def __enter__(self) -> StatusView: ...

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def update(self, rows: Sequence[Row], title: str) -> None: ...


class LivePanel:
    """A table redrawn in place, for a person at a terminal."""

    def __init__(self, console: Console) -> None:
        # Transient: the final table printed after the run replaces the live one.
        self._live = Live(console=console, refresh_per_second=REFRESH_PER_S, transient=True)

    def __enter__(self) -> LivePanel:
        self._live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.__exit__(et, e, tb)

    def update(self, rows: Sequence[Row], title: str) -> None:
        self._live.update(status_table(rows, title))


class LogLines:
    """One line every few seconds, for a log file or CI output (no cursor tricks)."""

    def __init__(self, console: Console, every_s: float = 5.0) -> None:
        self._console = console
        self._every_s = every_s
        self._last = 0.0

    def __enter__(self) -> LogLines:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def update(self, rows: Sequence[Row], title: str) -> None:
        now = time.monotonic()
        if now - self._last < self._every_s:
            return
        self._last = now
        parts = []
        for row in rows:
            counters = ",".join(f"{k}={v}" for k, v in row.counters.items())
            parts.append(f"{row.component_id}[{'up' if row.online else 'DOWN'} {counters}]")
        self._console.print(f"{title}: " + " ".join(parts), markup=False, highlight=False)


class NoView:
    """Shows nothing (``demo --json``: stdout is for the JSON only)."""

    def __enter__(self) -> NoView:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def update(self, rows: Sequence[Row], title: str) -> None:
        return None


def view_for(console: Console) -> StatusView:
    return LivePanel(console) if console.is_terminal else LogLines(console)
