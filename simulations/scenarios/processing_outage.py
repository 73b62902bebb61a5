"""A_WEB_DOS (4.4): the cloud processing service is taken down during measurement."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter

from simulations.model import TestbedSpec
from simulations.registry import scenario
from simulations.trial import Trial
from wire.messages import MeasurementRecord

OUTAGE_S = 4.0
RATE_HZ = 10.0


def _stored_samples(t: Trial) -> Counter[tuple[int, int]]:
    """(boot, seq) of every sample in the store, with how often it is there."""
    with sqlite3.connect(t.dir / "storage" / "records.sqlite") as c:
        rows = c.execute("SELECT leaf FROM records").fetchall()
    out: Counter[tuple[int, int]] = Counter()
    for (leaf,) in rows:
        r = MeasurementRecord.model_validate_json(bytes(leaf))
        out[(r.sample_boot, r.sample_seq)] += 1
    return out


@scenario(
    id="processing-outage",
    title="Remote processing unavailable for a while (denial of the cloud service)",
    vectors=["A_WEB_DOS"],
    requirements=["T1", "T8", "L7"],
    architectures=["4.4", "4.2"],
    testbed=TestbedSpec(
        rate_hz=RATE_HZ, supervised=("storage", "mother-unit", "sensor-1"), managed=("processing",)
    ),
    expectations={
        "degraded_with_reason": "while the processing does not answer, the state is DEGRADED "
        "and names the processing (T8)",
        "nothing_converted_meanwhile": "no result is invented while it is away",
        "all_converted_once": "after it is back, every sample accepted is converted and "
        "stored exactly once (T1, L7)",
        "operational_again": "the instrument returns to OPERATIONAL by itself",
    },
    budget_s=30.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker takes the cloud processing service down (the process is
            stopped: a denial of service of the internet service, 4.4). The sensor
            keeps measuring at 10 Hz; the mother unit keeps accepting samples.
    +2.5 s  unanswered requests are overdue: DEGRADED, "processing unavailable", and
            no conversion happens meanwhile (no value is invented).
    +4 s    the service is back; requests are resent with the same ids; every sample
            accepted is converted and stored exactly once, and the state returns to
            OPERATIONAL without anyone acting.
    """
    before = t.observer.state
    assert before is not None
    await t.live.stop("processing")
    t0 = t.attack_started("processing service down")
    degraded = await t.observer.wait_for(
        lambda: any(
            r.startswith("processing unavailable")
            for r in (t.observer.state.reasons if t.observer.state else [])
        ),
        timeout_s=OUTAGE_S,
    )
    seen = t.observer.first_state_after(
        t0, lambda s: any(r.startswith("processing unavailable") for r in s.reasons)
    )
    if seen is not None:
        t.detected(seen.at, "state DEGRADED: processing unavailable")
    t.expect(
        "degraded_with_reason",
        measured={"state": seen.message.state if seen else None,
                  "reasons": seen.message.reasons if seen else []},
        held=degraded and seen is not None and seen.message.state == "DEGRADED",
        expected="DEGRADED, reason 'processing unavailable' within the outage",
    )
    away = t.observer.state
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t0)))
    during = t.observer.state
    converted_away = (during.counters.get("converted", 0) if during else 0) - (
        away.counters.get("converted", 0) if away else 0
    )
    t.expect(
        "nothing_converted_meanwhile",
        measured={"converted_while_away": converted_away},
        held=converted_away == 0,
        expected="0",
    )
    t.mark("processing back")
    await t.live.spawn("processing")

    def caught_up() -> bool:
        s = t.observer.state
        if s is None:
            return False
        c = s.counters
        return (
            s.state == "OPERATIONAL"
            and c.get("accepted", 0) == c.get("converted", 0)
            and c.get("records_acked", 0) == c.get("records_created", 0)
        )

    back = await t.observer.wait_for(caught_up, timeout_s=15.0)
    after = t.observer.state
    assert after is not None
    stored = _stored_samples(t)
    twice = sorted(k for k, n in stored.items() if n > 1)
    c = after.counters
    t.expect(
        "all_converted_once",
        measured={
            "accepted": c.get("accepted", 0),
            "converted": c.get("converted", 0),
            "records_acked": c.get("records_acked", 0),
            "stored_twice": twice[:10],
        },
        held=back and c.get("accepted", 0) == c.get("converted", 0) and not twice
        and c.get("converted", 0) > before.counters.get("converted", 0),
        expected="accepted == converted == records acknowledged; no sample stored twice",
    )
    t.expect(
        "operational_again",
        measured={"state": after.state, "reasons": after.reasons},
        held=after.state == "OPERATIONAL",
        expected="OPERATIONAL",
    )
