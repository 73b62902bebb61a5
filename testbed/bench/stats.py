"""Small measuring helpers: percentiles, and CPU time and memory of a process (/proc)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def summarize_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": float(len(values)),
        "p50_ms": percentile(values, 0.50),
        "p99_ms": percentile(values, 0.99),
        "p999_ms": percentile(values, 0.999),
        "max_ms": max(values) if values else 0.0,
    }


@dataclass(frozen=True)
class ProcessSample:
    """CPU seconds used so far (user + system) and resident memory of one process."""

    cpu_s: float
    rss_bytes: int


def sample_process(pid: int) -> ProcessSample:
    """Read /proc/<pid>/stat (utime, stime) and statm (resident pages); Linux only."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return ProcessSample(0.0, 0)
    return ProcessSample(cpu, rss)


def machine_load() -> dict[str, float]:
    """Load averages and the number of CPUs: how busy the machine was (other users too)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        one = five = fifteen = 0.0
    return {"cpus": float(os.cpu_count() or 0), "load_1m": one, "load_5m": five,
            "load_15m": fifteen}
