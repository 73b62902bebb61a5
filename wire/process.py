"""Process entry: run one component's main coroutine until SIGTERM or SIGINT.

A signal cancels the main task; the component's ``finally`` blocks and the
link's offline announcement run, then the process exits 0. Anything else that
ends the main task is a crash: logged, exit code 1, so the supervisor names it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger()


def run_component(main: Coroutine[Any, Any, None]) -> int:
    async def runner() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await main
        except asyncio.CancelledError:
            log.info("stopped")
            return 0
        log.error("main_returned")
        return 1

    try:
        return asyncio.run(runner())
    except Exception as e:
        log.exception("crashed", error=repr(e))
        return 1
