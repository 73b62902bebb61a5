"""Running one component by hand, with no broker, to see how it starts (or refuses to).

Scenarios about material at rest (an edited parameter file, key files copied
elsewhere) need no live instrument: they start the component the way the
supervisor would and read its exit code and what it printed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from testbed import children

UNREACHABLE_BROKER = "mqtt://127.0.0.1:1"  # nothing listens: only start-up is exercised


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: still running after the deadline (it started)
    output: str


async def start_and_watch(
    package: str,
    component_id: str,
    dir: Path,
    log: Path,
    *,
    extra: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    deadline_s: float = 5.0,
) -> Outcome:
    """``python -m package --dir DIR ...``; its exit code within ``deadline_s`` and output."""
    argv = [
        sys.executable,
        "-m",
        package,
        "--dir",
        str(dir),
        "--component-id",
        component_id,
        "--broker",
        UNREACHABLE_BROKER,
        *extra,
    ]
    child = await children.spawn(
        f"{component_id}-offline", argv, log, env={**os.environ, **(env or {})}, cwd=dir
    )
    try:
        async with asyncio.timeout(deadline_s):
            await child.process.wait()
    except TimeoutError:
        pass
    finally:
        await children.stop([child], grace_s=2.0)
    code = child.returncode if child.returncode is not None and child.returncode >= 0 else None
    return Outcome(code, children.tail(log, 20))
