"""4.1: a paired sensor, and an instrument that refuses any other (P8/U8)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import pytest

from security_module.pairing_store import PairingStore
from security_module.provisioning import Provisioned
from testbed.rig import Rig
from wire.codec import decode
from wire.messages import Indication

pytestmark = [pytest.mark.timeout(90)]


async def test_similar_unit_inhibits_the_instrument_and_none_of_its_samples_is_indicated(
    rig: Rig,
) -> None:
    """Timeline: sensor-1 paired and measuring; it is replaced by sensor-spare-1, a genuine
    unit of the same manufacturer that was never paired, publishing on sensor-1's topics.
    Invariant: INHIBITED within 1 s of its first message, none of its samples indicated,
    the logbook holds the event, and it stays so (no authorized re-pairing happens)."""
    await rig.start_instrument("sensor-1", rate_hz=20)
    await rig.wait_state(lambda s: s.counters.get("records_acked", 0) >= 10, what="measuring")
    rig.kill("sensor-1")

    indications: list[Indication] = []
    first_spare_message: list[float] = []
    async with rig.client("watch") as client:
        await client.subscribe(rig.topics.indication, qos=1)
        await client.subscribe(rig.topics.sensor_pairing("sensor-1"), qos=1)
        await client.subscribe(rig.topics.sensor_data("sensor-1"), qos=1)

        async def watch() -> None:
            async for m in client.messages:
                if m.topic.matches(rig.topics.indication):
                    assert isinstance(m.payload, bytes)
                    indications.append(decode(Indication, m.payload, m.topic.value))
                elif not first_spare_message and (
                    m.topic.matches(rig.topics.sensor_data("sensor-1"))
                    or m.topic.matches(rig.topics.sensor_pairing("sensor-1"))
                ):
                    first_spare_message.append(time.time())

        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(watch())
            await asyncio.sleep(0.5)  # let the retained indication arrive first
            before = max((i.record_seq for i in indications), default=-1)
            rig.start(
                "sensor-1", "--identity", "sensor-spare-1", "--send-unpaired", "--rate-hz", "20"
            )
            state = await rig.wait_state(lambda s: s.state == "INHIBITED", what="INHIBITED")
            # When the mother unit published it, not when this (loaded) observer saw it.
            inhibited_at = state.time
            await asyncio.sleep(2.0)  # the swapped unit keeps sending
            watcher.cancel()

    assert first_spare_message, "the similar unit never published"
    assert inhibited_at - first_spare_message[0] < 1.0
    assert any("sensor-spare-1" in r for r in state.reasons)
    assert [i for i in indications if i.record_seq > before] == []
    final = await rig.wait_state(lambda s: True)
    assert final.state == "INHIBITED"
    assert final.rejected.get("not_paired", 0) > 0 or final.rejected.get("wrong_topic", 0) > 0
    # (sensor-1 may have its own entry from before its initial pairing.)
    entries = [e for e in rig.logbook() if e.type == "sensor_rejected"]
    assert "sensor-spare-1" in [e.data["device_id"] for e in entries]


async def test_authorized_re_pairing_of_another_approved_sensor(rig: Rig) -> None:
    """sensor-1 leaves; sensor-2 (approved, never paired) arrives: INHIBITED until an
    authorized pairing, which returns the instrument to OPERATIONAL and raises the
    event counter by exactly one (a change between approved sensors is an intervention)."""
    await rig.start_instrument("sensor-1", rate_hz=10)
    paired = await rig.wait_state(
        lambda s: s.counters.get("records_acked", 0) >= 5, what="measuring"
    )
    rig.kill("sensor-1")
    rig.start("sensor-2", "--rate-hz", "10")
    await rig.wait_state(lambda s: s.state == "INHIBITED", what="INHIBITED")
    result = await rig.pair("sensor-2", reason="sensor exchanged")
    assert result.ok, result.message
    assert len(result.comparison_code) == 6
    after = await rig.wait_state(
        lambda s: (
            s.state in ("OPERATIONAL", "DEGRADED")
            and "sensor-2" in s.paired_sensors
            and s.counters.get("accepted", 0) > paired.counters["accepted"]
        ),
        what="measuring with sensor-2",
    )
    assert not any("sensor-2" in r and "pair" in r for r in after.reasons)
    assert after.event_counter == paired.event_counter + 1
    pairing = [e for e in rig.logbook() if e.type == "pairing"]
    assert [e.data["peer_id"] for e in pairing] == ["sensor-1", "sensor-2"]
    assert pairing[-1].data["reason"] == "sensor exchanged"


async def test_pairing_needs_an_authorization_that_is_valid_and_unused(rig: Rig) -> None:
    """An authorization is single use: replaying the officer's command does not pair again."""
    await rig.start_instrument("sensor-1", rate_hz=5)
    store = PairingStore(rig.dir / "mother-unit", b"")
    assert store.peers() == ["sensor-1"]
    used = store.used_authorizations()
    assert len(used) == 1
    # T5: the pairing key is in no log file and no message we can see.
    key = PairingStore(rig.dir / "mother-unit", _passphrase(rig)).get("sensor-1").key
    for path in (rig.dir / "logs").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key.hex().encode() not in data, path
            assert key not in data, path


def _passphrase(rig: Rig) -> bytes:
    return Provisioned(rig.dir).passphrase


async def test_unpaired_sensor_only_says_hello(rig: Rig) -> None:
    """A genuine sensor waiting for its initial verification publishes no data."""
    rig.start("storage")
    rig.start("processing")
    rig.start("mother-unit")
    rig.start("sensor-1", "--rate-hz", "20")
    await rig.wait_online(["mother-unit", "sensor-1"])
    async with rig.client("data") as client:
        await client.subscribe(rig.topics.sensor_data("sensor-1"), qos=1)
        received = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.5):
                async for m in client.messages:
                    received.append(m)
        assert received == []
    state = await rig.wait_state(lambda s: s.state == "INHIBITED", what="INHIBITED")
    assert any("not paired" in r for r in state.reasons)


async def test_sensor_loss_is_seen_within_one_and_a_half_heartbeats(rig: Rig) -> None:
    """T8: a sensor that freezes (no Last Will: its connection stays open) is reported
    DEGRADED within 1.5 heartbeat intervals, and the instrument recovers by itself."""
    await rig.start_instrument("sensor-1", rate_hz=20)
    await rig.wait_state(lambda s: s.state == "OPERATIONAL" and s.counters.get("accepted", 0) > 5)
    process = rig.processes["sensor-1"]
    process.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        # On a loaded machine another reason (a slow processing reply) may come and go
        # meanwhile: wait for this one.
        state = await rig.wait_state(
            lambda s: "sensor sensor-1 unavailable" in s.reasons, what="sensor unavailable")
        seen = time.monotonic() - stopped
    finally:
        process.send_signal(signal.SIGCONT)
    assert state.state == "DEGRADED"
    assert seen <= 1.5 * rig.heartbeat_s + 0.1  # + the time the state message takes to us
    await rig.wait_state(lambda s: s.state == "OPERATIONAL", what="recovered")


async def test_pairing_started_before_the_mother_unit_is_up_waits_for_it(rig: Rig) -> None:
    """An officer who runs ``testbed pair`` while the instrument is still starting: the
    authorization is not lost (commands are not retained); the ceremony waits for the
    mother unit to come online, then pairs."""
    rig.start("storage")
    rig.start("processing")
    rig.start("sensor-1", "--rate-hz", "5")
    ceremony = asyncio.create_task(rig.pair("sensor-1"))
    await asyncio.sleep(0)  # the ceremony is under way before the mother unit exists
    rig.start("mother-unit")
    result = await ceremony
    assert result.ok, result.message
    assert [e.data["peer_id"] for e in rig.logbook() if e.type == "pairing"] == ["sensor-1"]
