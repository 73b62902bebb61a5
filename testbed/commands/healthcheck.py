"""``testbed healthcheck``: is this component online, as the broker sees it? (docker-compose)

A container's process existing says little; what the instrument needs is that
the component reached the broker and keeps announcing itself. So the check is
the same one the supervisor makes: the retained ``ComponentStatus`` of the
component says ``online`` and its last heartbeat is recent (T8). It connects as
the read-only ``observer`` user. Exit 0 healthy, 1 not (the reason on stderr).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Annotated

import aiomqtt
import typer

from testbed.broker_config import OBSERVER, tool_address
from testbed.commands.up import DirOption, InstrumentOption
from wire.client import NODELAY
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus
from wire.settings import DEFAULT_BROKER, BrokerAddress
from wire.topics import Topics

# A heartbeat older than this many intervals means the component stopped talking.
STALE_HEARTBEATS = 3.0
MIN_STALE_S = 5.0


def verdict(status: ComponentStatus | None, component_id: str, now: float) -> str | None:
    """None when healthy, else why not."""
    if status is None:
        return f"{component_id}: no retained status on the broker"
    if not status.online:
        return f"{component_id}: offline"
    age = now - status.time
    limit = max(STALE_HEARTBEATS * (status.heartbeat_s or 1.0), MIN_STALE_S)
    if age > limit:
        return f"{component_id}: last heartbeat {age:.1f} s ago (limit {limit:.1f} s)"
    return None


async def retained_status(
    broker: BrokerAddress, topics: Topics, component_id: str, timeout_s: float
) -> ComponentStatus | None:
    """The component's retained status: the first message after subscribing to its topic."""
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=f"healthcheck-{component_id}-{secrets.token_hex(4)}",
        socket_options=NODELAY,
        timeout=timeout_s,
    ) as client:
        topic = topics.status(component_id)
        await client.subscribe(topic, qos=1)
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
                    payload = message.payload
                    # Only this topic: the embedded broker was seen to hand a new
                    # subscriber another topic's retained message.
                    if message.topic.value != topic or not isinstance(
                        payload, bytes | bytearray
                    ) or not payload:
                        continue
                    try:
                        return decode(ComponentStatus, payload, topic)
                    except RejectedPayload:
                        return None
        except TimeoutError:
            return None
    return None


def register(app: typer.Typer) -> None:
    @app.command("healthcheck")
    def healthcheck(
        component: Annotated[
            str,
            typer.Option(
                "--component", envvar="TESTBED_COMPONENT_ID", help="Component id to check."
            ),
        ],
        dir: DirOption = Path("run"),
        broker: Annotated[
            str, typer.Option("--broker", envvar="TESTBED_BROKER", help="Broker URL.")
        ] = DEFAULT_BROKER,
        instrument: InstrumentOption = "gm-0001",
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker.")] = 5.0,
    ) -> None:
        """Exit 0 if COMPONENT's retained status is online with a recent heartbeat."""
        address = tool_address(dir, broker, OBSERVER)
        try:
            status = asyncio.run(
                retained_status(address, Topics(instrument), component, timeout)
            )
        except aiomqtt.MqttError as e:
            typer.echo(f"unhealthy: cannot read from {address.url()}: {e}", err=True)
            raise typer.Exit(1) from e
        problem = verdict(status, component, time.time())
        if problem is not None:
            typer.echo(f"unhealthy: {problem}", err=True)
            raise typer.Exit(1)
        typer.echo(f"healthy: {component} online")
