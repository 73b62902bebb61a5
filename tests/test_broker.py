"""The broker works the way the wire contract needs it, on Mosquitto and on the embedded one.

MQTT 3.1.1 features only (ARCHITECTURE.md §7): QoS 1 for data, retained
messages for state, Last Will for availability.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import aiomqtt
import pytest

from testbed import broker as broker_mod
from testbed import children
from testbed.broker import free_port
from testbed.testing import RunningBroker, port_listening, wait_for_port
from wire.client import NODELAY
from wire.settings import BrokerAddress

pytestmark = pytest.mark.timeout(30)


def client(b: RunningBroker, name: str, **kwargs: object) -> aiomqtt.Client:
    return aiomqtt.Client(
        b.address.host,
        b.address.port,
        identifier=name,
        socket_options=NODELAY,
        timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )


async def next_message(c: aiomqtt.Client, within_s: float = 5.0) -> aiomqtt.Message:
    async with asyncio.timeout(within_s):
        return await anext(aiter(c.messages))


async def test_qos1_publish_reaches_subscriber(broker: RunningBroker) -> None:
    async with client(broker, "sub") as sub, client(broker, "pub") as pub:
        await sub.subscribe("mi/t/data", qos=1)
        await pub.publish("mi/t/data", b"sample-1", qos=1)
        message = await next_message(sub)
    assert (message.topic.value, message.payload, message.qos) == ("mi/t/data", b"sample-1", 1)


async def test_retained_message_reaches_a_late_subscriber(broker: RunningBroker) -> None:
    async with client(broker, "pub") as pub:
        await pub.publish("mi/t/status/x", b"online", qos=1, retain=True)
    async with client(broker, "late") as late:
        await late.subscribe("mi/t/status/+", qos=1)
        message = await next_message(late)
    assert message.payload == b"online"
    assert message.retain


LWT_CLIENT = textwrap.dedent(
    """
    import asyncio, sys, aiomqtt
    async def main():
        will = aiomqtt.Will("mi/t/status/victim", b"offline", qos=1, retain=True)
        async with aiomqtt.Client("127.0.0.1", int(sys.argv[1]), identifier="victim",
                                  will=will, keepalive=60) as c:
            await c.publish("mi/t/status/victim", b"online", qos=1, retain=True)
            print("connected", flush=True)
            await asyncio.Event().wait()
    asyncio.run(main())
    """
)


async def test_last_will_is_delivered_when_a_client_is_killed(broker: RunningBroker) -> None:
    victim = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LWT_CLIENT, str(broker.port), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert victim.stdout is not None
        async with asyncio.timeout(10):
            assert await victim.stdout.readline() == b"connected\n"
        async with client(broker, "watcher") as watcher:
            await watcher.subscribe("mi/t/status/victim", qos=1)
            assert (await next_message(watcher)).payload == b"online"
            victim.send_signal(signal.SIGKILL)
            # keepalive is 60 s: the will must come from the dropped TCP connection, not a timeout
            will = await next_message(watcher, within_s=5)
        assert will.payload == b"offline"
    finally:
        if victim.returncode is None:
            victim.kill()
        await victim.wait()


def test_testbed_broker_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "broker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "testbed", "broker", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()
    output = log.read_text()
    assert f"listening on mqtt://127.0.0.1:{port}" in output
    assert "stopped" in output
    assert not port_listening(port)


def test_testbed_broker_reports_a_busy_port(embedded_broker: RunningBroker) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "testbed", "broker", "--port", str(embedded_broker.port)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{embedded_broker.port}" in result.stderr


@pytest.mark.mosquitto
def test_generated_mosquitto_config_listens_on_loopback_only_with_nodelay() -> None:
    config = broker_mod.mosquitto_config(1234, None)
    assert "listener 1234 127.0.0.1\n" in config
    assert "set_tcp_nodelay true\n" in config
    assert "persistence false\n" in config


@pytest.mark.parametrize(
    ("choice", "kind"),
    [("embedded", "embedded"), ("mosquitto", "mosquitto"), ("mqtt://10.0.0.1:1884", "external")],
)
def test_broker_choice(choice: str, kind: str) -> None:
    assert broker_mod.resolve(choice) == kind


def test_auto_prefers_mosquitto_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_mod, "mosquitto_path", lambda: "/usr/sbin/mosquitto")
    assert broker_mod.resolve("auto") == "mosquitto"
    monkeypatch.setattr(broker_mod, "mosquitto_path", lambda: None)
    assert broker_mod.resolve("auto") == "embedded"


def test_unknown_broker_choice_is_a_clear_error() -> None:
    with pytest.raises(broker_mod.BrokerError, match="auto, mosquitto, embedded or mqtt://"):
        broker_mod.resolve("rabbit://x")


@pytest.mark.parametrize(
    "kind", [pytest.param("mosquitto", marks=pytest.mark.mosquitto), "embedded"]
)
async def test_running_broker_starts_and_stops_and_frees_its_port(
    kind: str, tmp_path: Path
) -> None:
    async with broker_mod.running_broker(kind, tmp_path / "logs") as info:
        assert info.kind == kind
        assert port_listening(info.address.port)
        assert info.pid is not None
        pid = info.pid
    assert not port_listening(info.address.port)
    assert not children.alive(pid)


async def test_a_broker_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    child = await children.spawn(
        "mosquitto",
        [sys.executable, "-c", "import sys; print('bad config line 3'); sys.exit(3)"],
        tmp_path / "broker.log",
    )
    with pytest.raises(
        broker_mod.BrokerError, match=r"exited \(exit code 3\)[\s\S]*bad config line 3"
    ):
        await broker_mod.wait_until_listening(
            BrokerAddress(host="127.0.0.1", port=free_port()), deadline_s=5, child=child
        )


async def test_an_external_broker_that_is_not_there_is_a_clear_error() -> None:
    address = BrokerAddress(host="127.0.0.1", port=free_port())
    with pytest.raises(
        broker_mod.BrokerError, match=r"no broker listening on mqtt://127\.0\.0\.1:\d+ after 1 s"
    ):
        await broker_mod.wait_until_listening(address, deadline_s=1)
