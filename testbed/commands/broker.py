"""``testbed broker``: the embedded MQTT broker in the foreground."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer

from testbed.broker import LOCALHOST
from testbed.mqtt_broker.server import serve
from wire.logs import configure_logging


def _serve(host: str, port: int, log_level: str) -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        # SIGTERM (supervisor, docker) and SIGINT (Ctrl-C) both mean: shut down cleanly.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)

        def ready(url: str) -> None:
            print(f"embedded MQTT broker listening on {url}", flush=True)

        try:
            await serve(host, port, ready)
        except asyncio.CancelledError:
            print("embedded MQTT broker stopped", flush=True)

    configure_logging("broker", None, level=log_level)
    try:
        asyncio.run(main())
    except OSError as e:
        print(f"error: cannot listen on {host}:{port}: {e}", file=sys.stderr)
        raise typer.Exit(2) from e


def register(app: typer.Typer) -> None:
    @app.command("broker")
    def broker(
        port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 1883,
        host: Annotated[
            str, typer.Option(help="Address to listen on (default: loopback only).")
        ] = LOCALHOST,
        log_level: Annotated[
            str, typer.Option(help="info logs every connect and disconnect; warning only trouble.")
        ] = "info",
    ) -> None:
        """Run the embedded MQTT broker in the foreground until SIGTERM or Ctrl-C.

        Plain MQTT 3.1.1 over TCP: QoS 0/1 (QoS 2 is granted as 1), retained messages,
        Last Will, persistent sessions; clients are anonymous. Good for a demo and for
        tests; for measurements install Mosquitto (faster, and it enforces the
        provisioned users and ACL). `testbed up` starts this broker by itself when
        Mosquitto is not installed.
        """
        _serve(host, port, log_level)
