"""Issue 10: the broker as a line of defence (A_Spoofing at the transport level).

Against a real Mosquitto running the configuration ``testbed provision`` wrote:
an anonymous client is refused; a sensor's credentials neither publish where
storage or processing speak nor receive another sensor's pairing messages.
MQTT 3.1.1 denies silently (the PUBACK comes anyway), so each denial is observed
as "nothing delivered", next to a positive control showing that the very same
observation does see an allowed message: the control is published *after* the
denied message was acknowledged, so a delivered forgery would arrive first.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from security_module.provisioning import provision
from testbed.broker import free_port
from testbed.broker_config import (
    ACL_TABLE,
    OBSERVER,
    access_of,
    acl_text,
    broker_dir,
    native_config,
    password_file_text,
    pbkdf2_hash,
    tool_address,
    users_of,
)
from testbed.testing import RunningBroker, start_mosquitto
from wire.client import NODELAY
from wire.settings import MQTT_PASSWORD_FILE, BrokerAddress
from wire.topics import Topics

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60)]

T = Topics("gm-0001")
DELIVERY_S = 5.0


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dir = tmp_path_factory.mktemp("acl") / "testbed"
    provision(dir, sensors=2)
    return dir


@pytest.fixture
def hardened(provisioned: Path, tmp_path: Path) -> Iterator[RunningBroker]:
    """Mosquitto with the provisioned users and ACL (as `testbed up` runs it)."""
    config = native_config(provisioned, 0).replace("listener 0 ", "listener {port} ")
    broker = start_mosquitto(tmp_path / "mosquitto", config)
    yield broker
    broker.close()


def client_as(dir: Path, broker: RunningBroker, user: str, name: str = "") -> aiomqtt.Client:
    a = tool_address(dir, broker.address, user)
    return aiomqtt.Client(
        a.host, a.port, username=a.username, password=a.password,
        identifier=f"test-{user}-{name or 'c'}", socket_options=NODELAY, timeout=5,
    )


async def first_delivery(client: aiomqtt.Client, control: bytes) -> list[bytes]:
    """Payloads received up to and including the control message."""
    got: list[bytes] = []
    async with asyncio.timeout(DELIVERY_S):
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            got.append(payload)
            if payload == control:
                return got
    raise AssertionError("unreachable")


# -- passwords -------------------------------------------------------------------------------


def test_pbkdf2_hash_matches_mosquitto_passwd_known_answer() -> None:
    # Made by `mosquitto_passwd -b pw alice secret1` (Mosquitto 2.0.11).
    known = ("$7$101$Zuq1I3cnb/w9+Am8$yJvbPSIyigFuLeqwQt+F0bo6uXhaT8otzrUquA7tDiC63cdYEh4ww"
             "thl4gAfeF4y9hxKbZHZDf3OE22ZxNZcqg==")
    salt = base64.b64decode("Zuq1I3cnb/w9+Am8")
    assert pbkdf2_hash("secret1", salt=salt) == known


async def test_python_made_password_file_is_accepted_by_real_mosquitto(tmp_path: Path) -> None:
    """The fallback when mosquitto_passwd is missing: Mosquitto must take our hashes."""
    pwfile = tmp_path / "passwords"
    pwfile.write_text(password_file_text({"alice": "s3cret-A", "bob": "s3cret-B"},
                                         use_tool=False))
    pwfile.chmod(0o600)
    broker = start_mosquitto(
        tmp_path / "m",
        "listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {pwfile}\nuser root\n",
    )
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, username="alice",
                                  password="s3cret-A", timeout=5):
            pass
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", broker.port, username="alice",
                                      password="s3cret-B", timeout=5):
                pass
    finally:
        broker.close()


def test_every_user_has_a_private_0600_password_and_the_broker_files_are_0600(
    provisioned: Path,
) -> None:
    for user in ("mother-unit", "storage", "processing", "sensor-1", "sensor-2",
                 "sensor-spare-1", "officer", "verifier", "supervisor", "observer"):
        path = provisioned / user / MQTT_PASSWORD_FILE
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert len(path.read_text().strip()) >= 40  # 256 random bits
    for name in ("passwords", "acl"):
        assert (broker_dir(provisioned) / name).stat().st_mode & 0o777 == 0o600


# -- the ACL as text -------------------------------------------------------------------------


def test_acl_uses_user_names_never_client_ids(provisioned: Path) -> None:
    text = (broker_dir(provisioned) / "acl").read_text()
    assert "%c" not in text
    assert "pattern write mi/gm-0001/status/%u" in text
    for user in ("mother-unit", "storage", "processing", "sensor-1", "sensor-2",
                 "officer", "verifier", "supervisor", "observer"):
        assert f"\nuser {user}\n" in text
    # Nothing before the first user block except %u patterns: anonymous gets nothing.
    head = text.split("\nuser ", 1)[0]
    assert "topic " not in head


def test_every_topic_of_the_tree_has_exactly_its_publisher() -> None:
    """The table grows with wire/topics.py: each topic is written by its owner only."""
    users = users_of({"mother-unit": "mother_unit", "storage": "remote_storage",
                      "processing": "remote_processing", "sensor-1": "remote_sensor"})
    writers: dict[str, set[str]] = {}
    for user, role in users.items():
        for topic in access_of(role, T, user).write:
            writers.setdefault(topic, set()).add(user)
    expected = {
        T.sensor_data("sensor-1"): {"sensor-1"},
        T.sensor_pairing("sensor-1"): {"sensor-1"},
        "mi/gm-0001/mother/sensor/+/control": {"mother-unit"},
        "mi/gm-0001/mother/sensor/+/pairing": {"mother-unit"},
        T.processing_request: {"mother-unit"},
        T.storage_records: {"mother-unit"},
        T.state: {"mother-unit"},
        T.indication: {"mother-unit"},
        T.checkpoint: {"mother-unit"},
        T.command_reply: {"mother-unit"},
        T.command: {"officer"},
        T.processing_response: {"processing"},
        T.storage_ack: {"storage"},
        T.storage_query: {"mother-unit", "verifier"},
        "mi/gm-0001/storage/reply/+": {"storage"},
    }
    for topic, who in expected.items():
        assert writers.get(topic) == who, topic
    for user in users:
        assert writers[T.status(user)] == {user}
    assert set(ACL_TABLE) >= {"mother_unit", "remote_sensor", "remote_storage",
                              "remote_processing"}
    assert acl_text("gm-0001", users).count("\nuser ") == len(users)


# -- against the real broker -----------------------------------------------------------------


async def test_anonymous_client_is_refused(hardened: RunningBroker) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)not authori[sz]ed|refused|code:5|135"):
        async with aiomqtt.Client("127.0.0.1", hardened.port, identifier="anon", timeout=5):
            pass


async def test_wrong_password_is_refused(provisioned: Path, hardened: RunningBroker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", hardened.port, username="sensor-1",
                                  password="guessed", timeout=5):
            pass


@pytest.mark.parametrize(
    ("topic", "reader", "owner"),
    [
        pytest.param(T.processing_response, "mother-unit", "processing", id="processing-response"),
        pytest.param(T.storage_ack, "mother-unit", "storage", id="storage-ack"),
        pytest.param(T.storage_reply("mother-unit"), "mother-unit", "storage",
                     id="storage-reply"),
        pytest.param(T.storage_records, "storage", "mother-unit", id="storage-records"),
        pytest.param(T.processing_request, "processing", "mother-unit",
                     id="processing-request"),
        pytest.param(T.sensor_data("sensor-2"), "mother-unit", "sensor-2",
                     id="other-sensor-data"),
        pytest.param(T.status("storage"), "observer", "storage", id="other-status"),
    ],
)
async def test_sensor_credentials_cannot_publish_where_others_speak(
    provisioned: Path, hardened: RunningBroker, topic: str, reader: str, owner: str
) -> None:
    forged, control = b"forged by sensor-1", b"control from " + owner.encode()
    async with (
        client_as(provisioned, hardened, reader, "reader") as sub,
        client_as(provisioned, hardened, "sensor-1", "attacker") as attacker,
        client_as(provisioned, hardened, owner, "owner") as real,
    ):
        await sub.subscribe(topic, qos=1)
        await attacker.publish(topic, forged, qos=1)  # acknowledged, silently dropped
        await real.publish(topic, control, qos=1)  # positive control, same topic
        got = await first_delivery(sub, control)
    assert got == [control], f"sensor-1 got through on {topic}: {got}"


@pytest.mark.parametrize(
    ("topic", "owner", "reader"),
    [
        pytest.param(T.mother_pairing("sensor-2"), "mother-unit", "sensor-2",
                     id="mother-to-sensor-2"),
        pytest.param(T.sensor_pairing("sensor-2"), "sensor-2", "mother-unit",
                     id="sensor-2-to-mother"),
        pytest.param(T.sensor_control("sensor-2"), "mother-unit", "sensor-2",
                     id="control-of-sensor-2"),
    ],
)
async def test_sensor_cannot_receive_another_sensors_pairing_messages(
    provisioned: Path, hardened: RunningBroker, topic: str, owner: str, reader: str
) -> None:
    secret, control = b"pairing message for sensor-2", b"control on sensor-1's own topic"
    own_topic = T.mother_pairing("sensor-1")
    async with (
        client_as(provisioned, hardened, "sensor-1", "spy") as spy,
        client_as(provisioned, hardened, owner, "owner") as real,
        client_as(provisioned, hardened, "mother-unit", "mu") as mother,
        client_as(provisioned, hardened, reader, "legit") as legit,
    ):
        await spy.subscribe(topic, qos=1)
        await spy.subscribe("mi/gm-0001/#", qos=1)  # a wildcard does not widen the ACL either
        await spy.subscribe(own_topic, qos=1)
        await legit.subscribe(topic, qos=1)
        await real.publish(topic, secret, qos=1)
        # Positive control 1: the rightful reader does get the message.
        assert await first_delivery(legit, secret) == [secret]
        # Positive control 2: the spy's own pairing topic works on the same connection.
        await mother.publish(own_topic, control, qos=1)
        got = await first_delivery(spy, control)
    assert secret not in got, f"sensor-1 received {topic}"


async def test_observer_reads_status_but_cannot_command(
    provisioned: Path, hardened: RunningBroker
) -> None:
    control = b"control command"
    async with (
        client_as(provisioned, hardened, "mother-unit", "mu") as mother,
        client_as(provisioned, hardened, OBSERVER, "obs") as observer,
        client_as(provisioned, hardened, "officer", "off") as officer,
    ):
        await mother.subscribe(T.command, qos=1)
        await observer.publish(T.command, b"forged command", qos=1)
        await officer.publish(T.command, control, qos=1)
        assert await first_delivery(mother, control) == [control]


async def test_optional_tls_listener_takes_the_same_users(tmp_path: Path) -> None:
    from testbed.broker_config import write_broker_config  # noqa: PLC0415

    dir = tmp_path / "tls"
    write_broker_config(dir, "gm-0001", {"sensor-1": "remote_sensor"}, tls=True)
    tls_port = free_port()
    conf = native_config(dir, 0).replace("listener 0 ", "listener {port} ")
    tls_dir = broker_dir(dir) / "tls"
    conf += (f"listener {tls_port} 127.0.0.1\ncafile {tls_dir / 'ca.crt'}\n"
             f"certfile {tls_dir / 'server.crt'}\nkeyfile {tls_dir / 'server.key'}\n")
    assert "listener 8883" in (broker_dir(dir) / "mosquitto.conf").read_text()
    broker = start_mosquitto(tmp_path / "m", conf)
    try:
        context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
        a = BrokerAddress(host="127.0.0.1", port=tls_port).with_password_from(dir, "sensor-1")
        async with aiomqtt.Client("localhost", tls_port, username=a.username,
                                  password=a.password, tls_context=context, timeout=5):
            pass
    finally:
        broker.close()
