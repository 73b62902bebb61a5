"""Issue 2, last "Done when": garbage on every subscribed topic is rejected and counted.

Story: a running instrument (``testbed up``); an ordinary MQTT client sends 1,000
byte strings (fixed seed) to EVERY topic some component subscribes to: empty,
random bytes, huge but under the codec's limit, one over it, valid JSON of the
wrong shape, and truncated valid messages. On Mosquitto the fuzzer logs in with
the credentials of each topic's rightful publisher (a compromised part, or a
buggy one: the ACL would stop anybody else) under its own client id.

Invariants: every component process is still the one that was started (same pid,
online); each component counts every one of those messages in ``rejected`` (ARCH
§7: "rejected, counted and logged — never crashes a process"), and the mother
unit's retained state reports them by reason.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from testbed.broker_config import access_of, tool_address, users_of
from testbed.commands.healthcheck import retained_status
from testbed.testing import TestbedRun
from wire.client import NODELAY
from wire.codec import MAX_PAYLOAD_BYTES
from wire.messages import ComponentStatus
from wire.topics import Topics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SEED = 20260
PER_TOPIC = 1000
T = Topics("gm-0001")

# Every topic a component subscribes to (wire/topics.py, the components' route() calls),
# and which component receives it.
TARGETS: dict[str, str] = {
    T.sensor_data("sensor-1"): "mother-unit",
    T.sensor_pairing("sensor-1"): "mother-unit",
    T.processing_response: "mother-unit",
    T.storage_ack: "mother-unit",
    T.storage_reply("mother-unit"): "mother-unit",
    T.command: "mother-unit",
    T.status("sensor-spare-1"): "mother-unit",  # status/+ (availability); not retained
    T.sensor_control("sensor-1"): "sensor-1",
    T.mother_pairing("sensor-1"): "sensor-1",
    T.storage_records: "storage",
    T.storage_query: "storage",
    T.processing_request: "processing",
}


def valid_examples() -> list[bytes]:
    """Well-formed messages of the wire contract, to truncate."""
    status = ComponentStatus(component="remote_sensor", component_id="sensor-1", online=True,
                             time=time.time(), pid=1, counters={"sent": 3})
    return [
        status.model_dump_json().encode(),
        json.dumps({"kind": "command", "v": 1, "command_id": "c" * 32, "name": "unpair",
                    "issuer": "x", "args": {}}).encode(),
    ]


def payloads(rng: random.Random, n: int) -> list[bytes]:
    """``n`` byte strings: the edge cases first, then random ones of every kind."""
    wrong_schema = [b"{}", b"[]", b"null", b"0", b'"text"', b'{"kind": "sample", "v": 99}',
                    b'{"v": 1, "kind": "storage_ack", "batch_id": []}', b"true",
                    json.dumps({"a" * 10: list(range(100))}).encode()]
    fixed = [
        b"",
        rng.randbytes(MAX_PAYLOAD_BYTES),  # huge, exactly at the limit
        b"{" * (MAX_PAYLOAD_BYTES - 1),  # huge and deeply "nested"
        rng.randbytes(MAX_PAYLOAD_BYTES + 1),  # one byte over
        b"\x00" * 1000,
        "é".encode() * 100,
        b"\xff\xfe{}",
        *wrong_schema,
    ]
    examples = valid_examples()
    out = list(fixed)
    while len(out) < n:
        kind = rng.randrange(4)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(1, 2048)))
        elif kind == 1:
            out.append(rng.choice(wrong_schema))
        elif kind == 2:
            example = rng.choice(examples)
            out.append(example[: rng.randrange(1, len(example))])  # truncated
        else:
            out.append(json.dumps({"kind": rng.choice(["x", "sample", "command"]),
                                   "v": rng.randrange(-3, 5)}).encode())
    return out[:n]


def expected_rejections(sent: dict[str, list[bytes]]) -> Counter[str]:
    want: Counter[str] = Counter()
    for topic, messages in sent.items():
        component = TARGETS[topic]
        # A status topic with an empty payload is a cleared retained message, not garbage.
        skip_empty = topic.startswith(f"{T.base}/status/")
        want[component] += sum(1 for m in messages if m or not skip_empty)
    return want


def publisher_for(topic: str, dir: Path) -> str:
    """The user the generated ACL lets publish on ``topic``."""
    manifest = json.loads((dir / "manifest.json").read_text())
    for user, role in users_of(manifest["devices"]).items():
        for pattern in access_of(role, T, user).write:
            if aiomqtt.Topic(topic).matches(pattern):
                return user
    raise AssertionError(f"nobody may publish on {topic}")


@pytest.fixture
def fuzz_payloads() -> dict[str, list[bytes]]:
    rng = random.Random(SEED)
    return {topic: payloads(rng, PER_TOPIC) for topic in TARGETS}


async def send_all(run: TestbedRun, sent: dict[str, list[bytes]]) -> None:
    by_user: dict[str, list[str]] = {}
    for topic in sent:
        by_user.setdefault(publisher_for(topic, run.dir), []).append(topic)
    for user, topics in by_user.items():
        a = tool_address(run.dir, run.plain_broker_address, user)
        async with aiomqtt.Client(
            a.host, a.port, username=a.username, password=a.password,
            identifier=f"fuzz-{user}", socket_options=NODELAY, timeout=30,
            max_inflight_messages=100,
        ) as client:
            for topic in topics:
                for payload in sent[topic]:
                    await client.publish(topic, payload, qos=1)


def rejected(status: ComponentStatus) -> int:
    return status.counters.get("rejected", 0)


@pytest.mark.parametrize(
    "broker_kind",
    [pytest.param("mosquitto", marks=pytest.mark.mosquitto), "embedded"],
)
async def test_random_bytes_on_every_subscribed_topic_are_rejected_and_counted(
    testbed_run: Callable[..., TestbedRun],
    fuzz_payloads: dict[str, list[bytes]],
    broker_kind: str,
) -> None:
    run = testbed_run(broker=broker_kind, rate_hz=2.0)
    before = await run.wait_online(deadline_s=60)
    pids = {cid: s.pid for cid, s in before.items()}
    base = {cid: rejected(s) for cid, s in before.items()}

    await send_all(run, fuzz_payloads)

    want = expected_rejections(fuzz_payloads)
    end = time.monotonic() + 60
    observer = run.broker_address
    while True:
        # One retained message per component: bounded, however busy the broker is.
        statuses = {cid: await retained_status(observer, T, cid, 5.0) for cid in pids}
        for cid, pid in pids.items():
            status = statuses.get(cid)
            assert status is not None, cid
            assert status.online, f"{cid} went offline:\n{run.output_text()[-3000:]}"
            assert status.pid == pid, f"{cid} was restarted or replaced"
        got = {cid: rejected(s) - base.get(cid, 0) for cid in want
               if (s := statuses[cid]) is not None}
        if all(got.get(cid, 0) >= n for cid, n in want.items()):
            break
        assert time.monotonic() < end, f"rejections counted {got}, sent {dict(want)}"
        await asyncio.sleep(0.5)
    assert got == dict(want), "a component counted a message twice (or one it should not)"
    assert run.process.poll() is None, "the supervisor saw a component die"
    # The mother unit's retained state reports rejections by reason (T6).
    state = await run.state()
    assert state is not None
    assert sum(state.rejected.values()) >= want["mother-unit"]
    assert {"malformed", "schema", "too_large"} <= set(state.rejected)
