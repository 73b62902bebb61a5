"""Helper processes of the benchmark: started in their own process group, always stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from types import TracebackType
from typing import Any

from testbed import children


class RoleProcess:
    """``python -m testbed.bench.<module> <role> ...`` answering JSON lines on stdout."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    @property
    def pid(self) -> int:
        return self.process.pid

    async def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await stdout.readline()
                if not line:
                    err = b""
                    if self.process.stderr is not None:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(1):
                                err = await self.process.stderr.read()
                    raise RuntimeError(
                        f"bench {self.name} exited before {event!r}: {err.decode()[-2000:]}"
                    )
                answer: dict[str, Any] = json.loads(line)
                if answer.get("event") == event:
                    return answer

    async def stop(self) -> None:
        p = self.process
        if p.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(3):
                    await p.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                await p.wait()

    async def __aenter__(self) -> RoleProcess:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_role(module: str, role: str, *args: str) -> RoleProcess:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"testbed.bench.{module}", role, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
        preexec_fn=children.die_with_parent(),
    )
    return RoleProcess(process, f"{module} {role}")
