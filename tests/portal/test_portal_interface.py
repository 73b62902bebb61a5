"""The protective software interface (S; WELMEC 7.3 §4.3, A_SW_RUNTIME_INTERFACE).

Story: someone holding the portal's broker credentials - the portal itself, or
an attacker who took it over - sends the mother unit every kind of legally
relevant command: pairing, un-pairing, a parameter change, clearing the event
counter, resetting the logbook, a software update. Some carry the portal's
valid signature, some none, some claim another issuer, one is signed with a
key that is not the portal's. Invariant: every one is refused with an answer,
each leaves a ``command_refused`` entry in the logbook, and nothing legally
relevant changes (state, event counter, pairings). The documented non-relevant
commands, signed by the portal, are answered.
"""

from __future__ import annotations

import json

import pytest

from mother_unit.commands import NON_RELEVANT_COMMANDS
from portal.portal_support import command, logbook_entries, send_commands
from remote_portal.interface import PORTAL_COMMANDS, NotInInterface, PortalCommands
from security_module.provisioning import PORTAL, Provisioned
from testbed.testing import TestbedRun
from wire.messages import Command

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

LEGALLY_RELEVANT: list[tuple[str, dict[str, str | int | float | bool]]] = [
    ("authorize_pairing", {"authorization": "{}", "reason": "portal says so"}),
    ("unpair", {"authorization": "{}"}),
    ("set_parameter", {"name": "z_ratio", "value": 2.0}),
    ("clear_event_counter", {}),
    ("reset_logbook", {}),
    ("software_update", {"image": "evil"}),
    ("set_clock", {"time": 0}),
]


def _pairings(run: TestbedRun) -> list[str]:
    doc = json.loads((run.dir / "mother-unit" / "pairings.json").read_text())
    return sorted(doc["records"])


def test_the_portals_list_is_the_documented_list() -> None:
    assert set(PORTAL_COMMANDS) <= set(NON_RELEVANT_COMMANDS)
    with pytest.raises(NotInInterface):
        PortalCommands.command(object.__new__(PortalCommands), "authorize_pairing")


async def test_commands_outside_the_list_are_refused_logged_and_change_nothing(
    portal_testbed: TestbedRun,
) -> None:
    run = portal_testbed
    material = Provisioned(run.dir)
    portal_key = material.identity(PORTAL).private_key
    wrong_key = material.identity("sensor-spare-1").private_key
    # The portal's directory holds its own identity only: no authority's key.
    assert sorted(p.name for p in (run.dir / PORTAL).iterdir()) == [
        "cert.pem", "key.pem", "mqtt_password",
    ]
    before = await run.state()
    assert before is not None
    assert before.state == "OPERATIONAL"
    pairings_before = _pairings(run)

    refused: list[Command] = []
    for name, args in LEGALLY_RELEVANT:
        refused += [
            command(name, issuer=PORTAL, key=portal_key, args=args),  # the portal's identity
            command(name, issuer=PORTAL, args=args),  # claims it, unsigned
            command(name, issuer="anonymous", args=args),  # no identity at all
        ]
    # The documented commands without the portal's valid signature are refused as well.
    refused += [
        command("get_twin", issuer=PORTAL),
        command("get_logbook_excerpt", issuer="anonymous"),
        command("set_display_language", issuer=PORTAL, key=wrong_key, args={"language": "de"}),
        command("get_twin", issuer="sensor-spare-1", key=wrong_key),
    ]
    allowed = [
        command("get_twin", issuer=PORTAL, key=portal_key),
        command("set_display_language", issuer=PORTAL, key=portal_key, args={"language": "de"}),
    ]
    replies = await send_commands(run, PORTAL, [*refused, *allowed], timeout_s=15.0)

    assert {c.command_id for c in refused + allowed} <= replies.keys(), "unanswered commands"
    for c in refused:
        assert not replies[c.command_id].ok, (c.name, c.issuer, replies[c.command_id])
    for c in allowed:
        assert replies[c.command_id].ok, (c.name, replies[c.command_id])
    twin = replies[allowed[0].command_id].data
    assert json.loads(str(twin["parameters"]))["z_ratio"] == 1.0

    logged = {
        e["data"].get("command_id"): e
        for e in logbook_entries(run)
        if e["type"] == "command_refused"
    }
    missing = [(c.name, c.issuer) for c in refused if c.command_id not in logged]
    assert not missing, f"refused but not in the logbook: {missing}"
    assert all(not logged[c.command_id]["legally_relevant"] for c in refused)

    after = await run.state()
    assert after is not None
    assert after.event_counter == before.event_counter
    assert after.paired_sensors == before.paired_sensors
    assert after.state == "OPERATIONAL", after.reasons
    assert after.software_ids == before.software_ids
    assert _pairings(run) == pairings_before
