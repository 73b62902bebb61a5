"""Child processes of the testbed: start each in its own process group, stop it for sure.

Every process the testbed starts (broker, components) goes through
:func:`spawn` and :func:`stop`, so that one place guarantees what the
supervisor promises: a child gets SIGTERM first and SIGKILL after a grace
period, its whole process group is signalled (a component that forked leaves
nothing behind), and its console output lands in a file we can quote when it
dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Linux prctl(2) option: signal the child when its parent dies, so a supervisor
# killed with SIGKILL does not leave orphaned components talking to a broker.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def pre_exec() -> None:  # runs in the child between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return pre_exec


_PRE_EXEC = die_with_parent()


def tail(path: Path | None, lines: int = 15, max_bytes: int = 16_384) -> str:
    """The last ``lines`` lines of a (console) log, for error messages."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` (asyncio reports signals as -N)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class Child:
    """One started OS process, leader of its own process group."""

    name: str
    argv: tuple[str, ...]
    process: asyncio.subprocess.Process
    console_log: Path
    stopping: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def tail(self, lines: int = 15) -> str:
        return tail(self.console_log, lines)


async def spawn(
    name: str,
    argv: Sequence[str],
    console_log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start ``argv`` in a new session with stdout and stderr appended to ``console_log``."""
    console_log.parent.mkdir(parents=True, exist_ok=True)
    with console_log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            # Own session and process group: Ctrl-C in the terminal reaches only
            # the supervisor, which then stops the children in order, and a
            # group kill reaches anything a child started.
            start_new_session=True,
            preexec_fn=_PRE_EXEC,  # only calls prctl: safe after fork
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    return Child(name=name, argv=tuple(argv), process=process, console_log=console_log)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def stop(children: Sequence[Child], grace_s: float = 3.0) -> None:
    """SIGTERM every child's group, wait up to ``grace_s``, then SIGKILL what is left."""
    for child in children:
        child.stopping = True
        if child.returncode is None:
            _signal_group(child.pid, signal.SIGTERM)
    waits = [child.process.wait() for child in children]
    try:
        async with asyncio.timeout(grace_s):
            await asyncio.gather(*waits)
    except TimeoutError:
        pass
    for child in children:
        # Also for children that exited: a grandchild may still hold the group.
        _signal_group(child.pid, signal.SIGKILL)
    async with asyncio.timeout(grace_s):
        await asyncio.gather(*(child.process.wait() for child in children))


def _proc_stat(pid: str) -> tuple[str, int] | None:
    """(state, process group) of a live process from /proc, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return fields[0], int(fields[2])


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not reaped yet) counts as gone."""
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(str(pid))
        return stat is not None and stat[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of the process group ``pgid`` exists."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(entry)
            if stat is not None and stat[1] == pgid and stat[0] != "Z":
                return True
    return False
