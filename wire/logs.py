"""Structured logs: one JSON-lines file per process per run, plus readable stderr.

``DIR/logs/<run-id>/<component-id>.jsonl`` holds every event as one JSON object;
stderr shows the same events for a person (the supervisor captures it too).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class _TeeLogger:
    """Writes the event dict as JSON to the run file and as one line to stderr."""

    def __init__(self, file: TextIO | None, console: TextIO | None) -> None:
        self._file = file
        self._console = console

    def msg(self, event: dict[str, Any]) -> None:  # called by structlog with the final event
        if self._file is not None:
            self._file.write(json.dumps(event, default=str, separators=(",", ":")) + "\n")
            self._file.flush()
        if self._console is not None:
            rest = " ".join(
                f"{k}={v}"
                for k, v in event.items()
                if k not in ("event", "timestamp", "level", "component")
            )
            self._console.write(
                f"{event.get('timestamp', '')[11:23]} {event.get('level', ''):7} "
                f"[{event.get('component', '')}] {event.get('event', '')} {rest}\n"
            )
            self._console.flush()

    log = debug = info = warning = warn = error = critical = exception = msg


def _as_kwarg(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    # structlog calls ``logger.<level>(**returned)``: hand the whole dict over as one kwarg.
    return {"event": event}


def configure_logging(
    component_id: str,
    log_dir: Path | None,
    run_id: str = "",
    level: str = "info",
    console: bool = True,
) -> Path | None:
    """Configure structlog for this process; returns the JSON log file's path."""
    path: Path | None = None
    file: TextIO | None = None
    if log_dir is not None:
        run = run_id or time.strftime("%Y%m%dT%H%M%S")
        path = log_dir / run / f"{component_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        file = path.open("a", encoding="utf-8")
    tee = _TeeLogger(file, sys.stderr if console else None)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            lambda _, __, ev: {"component": component_id, **ev},
            _as_kwarg,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            _LEVELS.get(level.lower(), logging.INFO)
        ),
        logger_factory=lambda *_: tee,
        cache_logger_on_first_use=False,
    )
    return path
