"""A_BOOT: the mother unit's code changed while the instrument was off."""

from __future__ import annotations

import asyncio

from simulations.model import TestbedSpec
from simulations.overlay import append_line, changed_copy, env_for
from simulations.registry import scenario
from simulations.trial import Trial


@scenario(
    id="mother-code-changed",
    title="Mother unit code changed before start (manipulated boot)",
    vectors=["A_BOOT", "A_SW_REPLACE"],
    requirements=["P2/U2", "MID-8.2", "MID-8.3"],
    architectures=["all"],
    testbed=TestbedSpec(supervised=("storage", "processing", "sensor-1"), managed=("mother-unit",)),
    expectations={
        "inhibited": "the instrument restarts INHIBITED: its software identifier is not approved",
        "logbook_entry": "a software_id_mismatch entry names the identifier",
        "counter_raised": "the event counter rises by one",
        "not_approved_shown": "the state shows the mother unit's identifier as not approved "
        "(MID 8.3)",
        "nothing_indicated": "no measurement is indicated by the changed program",
    },
    budget_s=25.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the verified instrument measures. The attacker stops the mother unit,
            changes one line of its program (a copy of mother_unit/ with a line
            appended to app.py, first on its PYTHONPATH) and starts it again.
    +2 s    the changed program identifies itself at start: INHIBITED "mother unit
            software identifier not approved", logbook software_id_mismatch, event
            counter +1, identifier shown as not approved, nothing indicated.
    """
    before = t.observer.state
    assert before is not None
    overlay = changed_copy(
        "mother_unit",
        t.dir.parent / "overlay",
        append_line("app.py", "INJECTED = 'the attacker was here'  # A_BOOT"),
    )
    await t.live.stop("mother-unit")
    t0 = t.attack_started("mother unit restarted with changed code")
    await t.live.spawn("mother-unit", env=env_for(overlay))
    inhibited = await t.wait_state(lambda s: s.state == "INHIBITED", timeout_s=10.0)
    seen = t.observer.first_state_after(t0, lambda s: s.state == "INHIBITED")
    if seen is not None:
        t.detected(seen.at, f"INHIBITED: {'; '.join(seen.message.reasons)}")
    t.expect(
        "inhibited",
        measured=None if inhibited is None else inhibited.reasons,
        held=inhibited is not None and any("software" in r for r in inhibited.reasons),
        expected="INHIBITED, reason names the software identifier",
    )
    await asyncio.sleep(1.5)
    after = await t.settle(0.6)
    assert after is not None
    entries = t.logbook_since_ready({"software_id_mismatch"})
    t.expect(
        "logbook_entry",
        measured=[e.data for e in entries],
        held=any(e.data.get("component") == "mother_unit" for e in entries),
        expected="1 software_id_mismatch entry for mother_unit",
    )
    t.expect(
        "counter_raised",
        measured={"before": before.event_counter, "after": after.event_counter},
        held=after.event_counter == before.event_counter + 1,
        expected="+1",
    )
    t.expect(
        "not_approved_shown",
        measured={"software_ids": after.software_ids, "approved": after.software_approved},
        held=after.software_approved.get("mother_unit") is False
        and after.software_ids.get("mother_unit") != before.software_ids.get("mother_unit"),
        expected="software_approved.mother_unit = false, another identifier",
    )
    shown = t.observer.indications_after(t0 + 0.5)
    t.expect("nothing_indicated", measured=len(shown), held=not shown, expected="0 indications")
