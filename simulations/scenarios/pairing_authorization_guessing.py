"""A_PASSWORD: pairing authorizations guessed repeatedly - lockout with a growing backoff."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_module.pairing import issue_authorization
from simulations.attacker import Attacker
from simulations.registry import scenario
from simulations.trial import Trial
from wire.codec import RejectedPayload, decode, encode
from wire.messages import Command, CommandReply

GUESSES = 3  # the mother unit's AuthorizationLockout.max_failures


def _guess() -> Command:
    token = issue_authorization(
        Ed25519PrivateKey.generate(),
        instrument_id="gm-0001",
        sensor_id="sensor-spare-1",
        ttl=dt.timedelta(minutes=5),
    )
    return Command(
        command_id=uuid.uuid4().hex,
        name="authorize_pairing",
        issuer=f"guesser-{uuid.uuid4().hex[:4]}",  # a new name each time: no escape
        args={"authorization": token.model_dump_json(), "reason": "guess"},
    )


async def _ask(a: Attacker, t: Trial, commands: list[Command]) -> list[CommandReply]:
    ids = {c.command_id for c in commands}
    got: dict[str, CommandReply] = {}
    for c in commands:
        await a.publish(t.topics.command, encode(c))
    try:
        async with asyncio.timeout(3.0):
            async for m in a.client.messages:
                payload = m.payload if isinstance(m.payload, bytes) else b""
                try:
                    reply = decode(CommandReply, payload, m.topic.value)
                except RejectedPayload:
                    continue
                if reply.command_id in ids:
                    got[reply.command_id] = reply
                if len(got) == len(ids):
                    break
    except TimeoutError:
        pass
    return [got[c.command_id] for c in commands if c.command_id in got]


@scenario(
    id="pairing-authorization-guessing",
    title="Pairing authorization guessed repeatedly: lockout with growing backoff",
    vectors=["A_PASSWORD"],
    requirements=["P8/U8", "MID-8.2"],
    architectures=["4.1"],
    expectations={
        "locked_after_guesses": f"after {GUESSES} refused authorizations the interface is "
        "locked (logbook pairing_lockout)",
        "valid_refused_while_locked": "a valid authorization is refused while locked",
        "backoff_grows": "the next lockout lasts longer than the first",
        "logbook_bounded": "attempts during a lockout are counted, not logged one by one",
        "valid_after_backoff": "after the backoff a valid authorization pairs again",
    },
    budget_s=40.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      at the officer's workstation (its broker password) the attacker tries 3
            pairing authorizations signed with keys of its own (guesses), each under
            another issuer name.
    +0.5 s  the interface is locked for 2 s (logbook pairing_lockout); the real officer
            now presents a valid authorization: refused, "locked out"; 5 more guesses:
            refused unchecked, only counted.
    +2.5 s  3 more guesses: locked again, now for 4 s.
    +6.5 s  the officer's valid authorization pairs sensor-1 again (event counter +1).
    """
    before = t.observer.state
    assert before is not None
    async with t.attacker("guesser", credentials="officer") as a:
        await a.client.subscribe(t.topics.command_reply, qos=1)
        t.attack_started("authorization guessing")
        first = await _ask(a, t, [_guess() for _ in range(GUESSES)])
        lockouts = t.logbook_since_ready({"pairing_lockout"})
        if lockouts:
            t.detected(time.monotonic(), f"logbook: pairing_lockout {lockouts[0].data}")
        t.expect(
            "locked_after_guesses",
            measured={"replies": [r.ok for r in first], "lockouts": [e.data for e in lockouts]},
            held=len(first) == GUESSES and not any(r.ok for r in first) and len(lockouts) == 1,
            expected=f"{GUESSES} refusals, then 1 pairing_lockout entry",
        )
        valid = await t.live.pair("sensor-1", reason="officer during lockout")
        t.expect(
            "valid_refused_while_locked",
            measured={"ok": valid.ok, "message": valid.message},
            held=not valid.ok and "locked" in valid.message,
            expected="refused: locked out",
        )
        logged_before = len(t.logbook_since_ready({"pairing_refused"}))
        during = await _ask(a, t, [_guess() for _ in range(5)])
        logged_during = len(t.logbook_since_ready({"pairing_refused"})) - logged_before
        t.expect(
            "logbook_bounded",
            measured={"attempts_while_locked": len(during), "logged": logged_during},
            held=len(during) == 5 and logged_during == 0,
            expected="5 refused, 0 logbook entries",
        )
        waited = _retry_in(valid.message) or 2.0
        await asyncio.sleep(waited + 0.2)
        await _ask(a, t, [_guess() for _ in range(GUESSES)])
        lockouts = t.logbook_since_ready({"pairing_lockout"})
        seconds = [float(e.data.get("seconds", 0)) for e in lockouts]
        t.expect(
            "backoff_grows",
            measured=seconds,
            held=len(seconds) == 2 and seconds[1] > seconds[0],
            expected="2 lockouts, the second longer",
        )
    await asyncio.sleep((seconds[-1] if seconds else 4.0) + 0.3)
    again = await t.live.pair("sensor-1", reason="re-verification after lockout")
    after = await t.settle(0.6)
    assert after is not None
    t.expect(
        "valid_after_backoff",
        measured={"ok": again.ok, "event_counter": [before.event_counter, after.event_counter]},
        held=again.ok and after.event_counter == before.event_counter + 1,
        expected="paired; event counter +1",
    )


def _retry_in(message: str) -> float | None:
    match = re.search(r"retry in ([0-9.]+) s", message)
    return float(match.group(1)) if match else None
