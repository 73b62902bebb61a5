"""A_SW_REPLACE (4.4): the remote processing's conversion code changed and restarted."""

from __future__ import annotations

import asyncio
import time

from simulations.model import TestbedSpec
from simulations.overlay import append_line, changed_copy, env_for
from simulations.registry import scenario
from simulations.trial import Trial

# One changed line of legally relevant code: every converted volume 1 % larger.
EDIT = "_approved = convert\nconvert = lambda *a, **k: _approved(*a, **k) * 1.01  # noqa: E731\n"


@scenario(
    id="processing-code-changed",
    title="Remote processing replaced by changed conversion code",
    vectors=["A_SW_REPLACE"],
    requirements=["P2/U2", "MID-8.2", "MID-8.3"],
    architectures=["4.4"],
    testbed=TestbedSpec(supervised=("storage", "mother-unit", "sensor-1"), managed=("processing",)),
    expectations={
        "mismatch_logged": "a software_id_mismatch entry for remote_processing",
        "counter_raised": "the event counter rises by one",
        "vb_not_indicated": "after detection no Vb is indicated (shown unavailable, with reason)",
        "vm_still_indicated": "Vm keeps being indicated (MID 7.2: no unreasonable demands)",
    },
    depends_on="issue 6: signed processing results with software identifiers",
    budget_s=25.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the instrument converts Vm to Vb remotely. At the cloud host the attacker
            stops the processing service and starts a copy whose conversion returns
            1 % more (one line appended to remote_processing/conversion.py).
    first   the first signed result names the changed software identifier: logbook
    result  software_id_mismatch, event counter +1, Vb shown as unavailable with the
            reason, Vm still indicated.
    """
    before = t.observer.state
    assert before is not None
    overlay = changed_copy(
        "remote_processing", t.dir.parent / "overlay", append_line("conversion.py", EDIT)
    )
    await t.live.stop("processing")
    t0 = t.attack_started("processing replaced")
    await t.live.spawn("processing", env=env_for(overlay))
    found = await t.observer.wait_for(
        lambda: bool(t.logbook_since_ready({"software_id_mismatch"})), timeout_s=10.0
    )
    if found:
        t.detected(time.monotonic(), "logbook: software_id_mismatch remote_processing")
    await asyncio.sleep(2.0)
    after = await t.settle(0.6)
    assert after is not None
    entries = t.logbook_since_ready({"software_id_mismatch"})
    t.expect(
        "mismatch_logged",
        measured=[e.data for e in entries],
        held=any(e.data.get("component") == "remote_processing" for e in entries),
        expected="1 entry for remote_processing",
    )
    t.expect(
        "counter_raised",
        measured={"before": before.event_counter, "after": after.event_counter},
        held=after.event_counter == before.event_counter + 1,
        expected="+1",
    )
    late = [i for i in t.observer.indications if i.at >= (t.detection_at or t0) + 0.5]
    with_vb = [i.message.vb for i in late if i.message.vb is not None]
    t.expect(
        "vb_not_indicated",
        measured={
            "indications": len(late),
            "with_vb": len(with_vb),
            "reason": late[-1].message.vb_unavailable if late else None,
        },
        held=bool(late) and not with_vb and bool(late[-1].message.vb_unavailable),
        expected="0 indications with Vb; a reason shown",
    )
    t.expect(
        "vm_still_indicated",
        measured=len(late),
        held=len(late) > 0,
        expected="> 0 indications of Vm",
    )
