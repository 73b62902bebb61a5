"""A_SW_RUNTIME_INTERFACE: unauthorized commands on the mother unit's command topic."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_module.pairing import issue_authorization
from simulations.registry import scenario
from simulations.trial import Trial
from wire.codec import RejectedPayload, decode, encode
from wire.messages import Command, CommandReply

UNKNOWN = ["set_parameter", "reset_event_counter", "delete_logbook", "set_software_id", "shell"]


def _forged_authorization(sensor: str) -> str:
    """A pairing authorization signed with a key the attacker made (not the authority's)."""
    return issue_authorization(
        Ed25519PrivateKey.generate(),
        instrument_id="gm-0001",
        sensor_id=sensor,
        ttl=dt.timedelta(minutes=5),
    ).model_dump_json()


@scenario(
    id="unauthorized-commands",
    title="Unknown commands and forged authorizations on the command topic",
    vectors=["A_SW_RUNTIME_INTERFACE"],
    requirements=["P8/U8", "MID-8.2", "S"],
    architectures=["4.1", "4.3"],
    expectations={
        "all_refused": "every command is answered ok=false",
        "refusals_logged": "each unknown command and each refused authorization is in the logbook",
        "nothing_relevant_changed": "event counter, paired sensors, software identifiers and "
        "state are as before",
    },
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker sits at the officer's workstation (its broker password) and sends
            five commands the mother unit does not have (set_parameter,
            reset_event_counter, delete_logbook, set_software_id, shell), an
            authorize_pairing for the spare sensor and an unpair of sensor-1, both with
            authorizations signed by a key of its own.
    +1 s    every command was answered "refused"; the logbook names each attempt;
            event counter, pairings, software identifiers and state are unchanged.
    """
    before = t.observer.state
    assert before is not None
    commands = [
        Command(command_id=uuid.uuid4().hex, name=n, issuer="attacker", args={"value": 1})
        for n in UNKNOWN
    ]
    commands += [
        Command(
            command_id=uuid.uuid4().hex,
            name="authorize_pairing",
            issuer="attacker",
            args={"authorization": _forged_authorization("sensor-spare-1"), "reason": "swap"},
        ),
        Command(
            command_id=uuid.uuid4().hex,
            name="unpair",
            issuer="attacker",
            args={"authorization": _forged_authorization("sensor-1")},
        ),
    ]
    replies: dict[str, CommandReply] = {}
    async with t.attacker("operator", credentials="officer") as a:
        await a.client.subscribe(t.topics.command_reply, qos=1)
        t.attack_started("unauthorized commands")
        for c in commands:
            await a.publish(t.topics.command, encode(c))
        try:
            async with asyncio.timeout(5.0):
                async for m in a.client.messages:
                    payload = m.payload if isinstance(m.payload, bytes) else b""
                    try:
                        reply = decode(CommandReply, payload, m.topic.value)
                    except RejectedPayload:
                        continue
                    replies[reply.command_id] = reply
                    if reply.command_id == commands[0].command_id:
                        t.detected(time.monotonic(), f"refused: {reply.message}")
                    if len(replies) >= len(commands):
                        break
        except TimeoutError:
            pass
    answers = {
        c.name: (replies[c.command_id].ok if c.command_id in replies else None) for c in commands
    }
    t.expect(
        "all_refused",
        measured=answers,
        held=all(v is False for v in answers.values()),
        expected="ok=false for each of 7",
    )
    await asyncio.sleep(0.5)
    refused = t.logbook_since_ready({"command_refused", "pairing_refused"})
    t.expect(
        "refusals_logged",
        measured=[{"type": e.type, **e.data} for e in refused],
        held=len(refused) >= len(commands),
        expected=f">= {len(commands)} entries (one per refused command)",
    )
    after = await t.settle(0.6)
    assert after is not None
    same = {
        "event_counter": (before.event_counter, after.event_counter),
        "paired_sensors": (before.paired_sensors, after.paired_sensors),
        "software_ids": before.software_ids == after.software_ids,
        "state": (before.state, after.state),
        "reasons": after.reasons,
    }
    t.expect(
        "nothing_relevant_changed",
        measured=same,
        held=before.event_counter == after.event_counter
        and before.paired_sensors == after.paired_sensors
        and before.software_ids == after.software_ids
        and after.state != "INHIBITED",
        expected="unchanged, not INHIBITED (a passing DEGRADED of a slow part is no change)",
    )
