"""A bounded HTTP load generator for the portal (A_WEB_DOS), run as its own process.

    python tests/portal/portal_loadgen.py --port P --duration 8 --connections 8

Keep-alive HTTP/1.1 GETs over raw asyncio streams (cheap per request, so the
generator - not the client library - sets the pace), from a chosen loopback
source address so that the portal sees one distinct client. Bounded in time and
in requests; prints one JSON line: requests, statuses, errors, elapsed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

PATHS = ("/api/snapshot", "/", "/twin.json", "/static/portal.js")


async def worker(
    args: argparse.Namespace, n: int, end: float, budget: list[int], statuses: Counter[str]
) -> None:
    while time.monotonic() < end and budget[0] > 0:
        try:
            reader, writer = await asyncio.open_connection(
                args.host, args.port, local_addr=(args.source, 0)
            )
        except OSError:
            statuses["connect_error"] += 1
            await asyncio.sleep(0.01)
            continue
        try:
            i = n
            while time.monotonic() < end and budget[0] > 0:
                budget[0] -= 1
                path = PATHS[i % len(PATHS)]
                i += 1
                writer.write(f"GET {path} HTTP/1.1\r\nHost: portal\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1].decode()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                statuses[status] += 1
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            statuses["io_error"] += 1
        finally:
            writer.close()


async def main(args: argparse.Namespace) -> None:
    start = time.monotonic()
    end = start + args.duration
    budget = [args.max_requests]
    statuses: Counter[str] = Counter()
    async with asyncio.TaskGroup() as tg:
        for n in range(args.connections):
            tg.create_task(worker(args, n, end, budget, statuses))
    elapsed = time.monotonic() - start
    total = sum(v for k, v in statuses.items() if k.isdigit())
    print(json.dumps({
        "requests": total, "statuses": dict(statuses), "elapsed_s": round(elapsed, 3),
        "rate_per_s": round(total / elapsed, 1),
    }), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="127.0.0.2")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=200_000)
    asyncio.run(main(parser.parse_args()))
