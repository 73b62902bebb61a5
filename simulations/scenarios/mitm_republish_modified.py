"""A_Tampering_and_Injection: a man in the middle republishes modified copies of messages."""

from __future__ import annotations

import asyncio
import json

from simulations.forge import bit_flipped
from simulations.registry import scenario
from simulations.trial import Trial
from wire.messages import ConversionResponse

DURATION_S = 3.0


@scenario(
    id="mitm-republish-modified",
    title="Man in the middle republishes modified samples and processing results",
    vectors=["A_Tampering_and_Injection"],
    requirements=["T2", "T3", "T6"],
    architectures=["4.1", "4.4"],
    expectations={
        "modified_samples_refused": "every modified sample copy fails authentication",
        "modified_results_refused": "every modified processing result is refused",
        "no_modified_value_indicated": "no modified Vb reaches the indication",
        "genuine_flow_continues": "genuine samples and results go on being used",
    },
    budget_s=25.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      a man in the middle (it reads with the mother unit's broker password and
            writes with those of sensor-1 and of the processing) republishes, for 3 s,
            a copy of every sample with one ciphertext bit flipped, and a copy of every
            processing result with each Vb raised by 1 % (signature left as it was).
    +3 s    every modified copy was refused and counted (authentication, bad_signature,
            or as a duplicate of an answered request); none of the raised Vb values was
            indicated; the genuine messages went on being used.
    """
    before = t.observer.state
    assert before is not None
    data = t.topics.sensor_data("sensor-1")
    raised: set[float] = set()

    def flip(topic: str, payload: bytes) -> tuple[str, bytes]:
        return topic, bit_flipped(payload, bit=21)

    def raise_vb(topic: str, payload: bytes) -> tuple[str, bytes] | None:
        try:
            response = ConversionResponse.model_validate_json(payload)
        except ValueError:
            return None
        results = [round(r * 1.01, 9) for r in response.results]
        raised.update(results)
        doc = json.loads(payload)
        doc["results"] = results
        return topic, json.dumps(doc).encode()

    t0 = t.attack_started("man in the middle")
    async with (
        t.attacker("mitm-reader-1", credentials="mother-unit") as read_data,
        t.attacker("mitm-reader-2", credentials="mother-unit") as read_results,
        t.attacker("mitm-as-sensor", credentials="sensor-1") as as_sensor,
        t.attacker("mitm-as-processing", credentials="processing") as as_processing,
    ):
        (_, samples_sent), (_, results_sent) = await asyncio.gather(
            read_data.relay(data, flip, DURATION_S, via=as_sensor),
            read_results.relay(
                t.topics.processing_response, raise_vb, DURATION_S, via=as_processing
            ),
        )
    t.mark("relayed", samples=samples_sent, results=results_sent)
    after = await t.settle(1.0)
    assert after is not None
    rejected = {k: v - before.rejected.get(k, 0) for k, v in after.rejected.items()}
    seen = t.observer.first_state_after(t0, lambda s: s.rejected.get("authentication", 0) > 0)
    if seen is not None:
        t.detected(seen.at, "rejected: authentication")
    t.expect(
        "modified_samples_refused",
        measured={"sent": samples_sent, "authentication": rejected.get("authentication", 0)},
        held=samples_sent > 0 and rejected.get("authentication", 0) >= samples_sent - 2,
        expected="authentication >= copies sent (-2 in flight)",
    )
    refused = sum(
        rejected.get(r, 0) for r in ("bad_signature", "duplicate_response", "unknown_request")
    )
    t.expect(
        "modified_results_refused",
        measured={
            "sent": results_sent,
            **{k: v for k, v in rejected.items() if k != "authentication"},
        },
        held=results_sent > 0 and refused >= results_sent - 2,
        expected="bad_signature / duplicate_response >= copies sent (-2 in flight)",
    )
    shown = [i.vb for i in t.observer.indications_after(t0) if i.vb in raised]
    t.expect("no_modified_value_indicated", measured=len(shown), held=not shown, expected="0")
    accepted = after.counters.get("accepted", 0) - before.counters.get("accepted", 0)
    converted = after.counters.get("converted", 0) - before.counters.get("converted", 0)
    t.expect(
        "genuine_flow_continues",
        measured={"accepted": accepted, "converted": converted},
        held=accepted > 0 and converted > 0,
        expected="> 0 each",
    )
