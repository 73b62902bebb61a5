"""A CPU profile of the mother unit at saturation (py-spy), and what it shows in text.

``py-spy record`` samples the running process from outside (no code change, no
slowdown of the measured process beyond the sampling itself). It writes a flame
graph (SVG) and the raw collapsed stacks; :func:`summarize_collapsed` turns the
latter into the functions with the most samples, by self time and inclusive time.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, svg: Path, raw: Path, rate: int = 200) -> bool:
    """Sample ``pid`` for ``seconds``; False if py-spy is missing or fails."""
    binary = py_spy()
    if binary is None:
        return False
    ok = True
    for fmt, out in (("flamegraph", svg), ("raw", raw)):
        proc = await asyncio.create_subprocess_exec(
            binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds / 2))),
            "--rate", str(rate), "--format", fmt, "--output", str(out), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        ok = ok and await proc.wait() == 0
    return ok


def summarize_collapsed(text: str, top: int = 25) -> str:
    """Top functions by self and by inclusive samples from py-spy's collapsed stacks."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        self_counts[frames[-1]] += n
        for frame in set(frames):
            incl_counts[frame] += n
    lines = [f"samples: {total}", "", "self time (where the CPU is):"]
    lines += [f"{100 * c / total:6.1f} %  {f}" for f, c in self_counts.most_common(top)]
    lines += ["", "inclusive time (what it is spent for):"]
    lines += [f"{100 * c / total:6.1f} %  {f}" for f, c in incl_counts.most_common(top)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    return f"{name} ({'/'.join(parts[-2:])})" if parts else name
