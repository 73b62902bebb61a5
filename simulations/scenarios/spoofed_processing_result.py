"""A_Spoofing (4.4): forged conversion results answer the mother unit's requests first."""

from __future__ import annotations

import asyncio
import base64
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_module.signing import CONTEXT_PROCESSING_RESULT, sign
from simulations.registry import scenario
from simulations.trial import Trial
from wire.codec import RejectedPayload, decode, encode
from wire.messages import ConversionRequest, ConversionResponse

FORGED_VB = 424_242.0


def _forgeries(request: ConversionRequest, software_id: str) -> list[ConversionResponse]:
    """Unsigned; signed by the attacker's key as "processing"; from an unknown component."""
    base = ConversionResponse(
        request_id=request.request_id,
        component_id="processing",
        software_id=software_id,
        parameter_version="1",
        inputs_digest="0" * 64,
        results=[FORGED_VB] * len(request.inputs),
        computed_at=time.time(),
    )
    key = Ed25519PrivateKey.generate()
    signed = base.model_copy(
        update={
            "signature": base64.b64encode(
                sign(base, key, CONTEXT_PROCESSING_RESULT, exclude={"signature"})
            ).decode()
        }
    )
    return [base, signed, signed.model_copy(update={"component_id": "processing-2"})]


@scenario(
    id="spoofed-processing-result",
    title="Forged processing results sent as the remote processing",
    vectors=["A_Spoofing"],
    requirements=["T3", "T4"],
    architectures=["4.4"],
    expectations={
        "none_used": f"no forged result is used: {FORGED_VB} never indicated",
        "rejected_by_reason": "the forgeries are counted as bad_signature / unknown_component",
        "genuine_go_on": "genuine results go on being converted and indicated",
    },
    depends_on="issue 6: signed processing results",
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker has the processing host's broker password (not its signing key,
            which is encrypted at rest). It reads every conversion request and answers
            each one at once, before the genuine service: an unsigned result, one signed
            with its own key claiming to be "processing", one from "processing-2"; every
            Vb = 424242.
    +3 s    no forged Vb indicated; the forgeries are counted by reason; genuine results
            are still used.
    """
    before = t.observer.state
    assert before is not None
    software_id = before.software_ids.get("remote_processing", "0" * 64)
    sent = 0
    async with t.attacker("fake-processing", credentials="processing") as a:
        await a.client.subscribe(t.topics.processing_request, qos=1)
        t0 = t.attack_started("forged results")
        try:
            async with asyncio.timeout(3.0):
                async for m in a.client.messages:
                    payload = m.payload if isinstance(m.payload, bytes) else b""
                    try:
                        request = decode(ConversionRequest, payload, m.topic.value)
                    except RejectedPayload:
                        continue
                    for forged in _forgeries(request, software_id):
                        await a.publish(t.topics.processing_response, encode(forged))
                        sent += 1
        except TimeoutError:
            pass
    t.mark("forged_results_sent", count=sent)
    after = await t.settle(0.8)
    assert after is not None
    shown = [i.vb for i in t.observer.indications_after(t0) if i.vb == FORGED_VB]
    t.expect("none_used", measured=len(shown), held=not shown and sent > 0, expected="0")
    reasons = ("bad_signature", "unknown_component", "duplicate_response", "unknown_request")
    counted = {r: after.rejected.get(r, 0) - before.rejected.get(r, 0) for r in reasons}
    seen = t.observer.first_state_after(t0, lambda s: s.rejected.get("bad_signature", 0) > 0)
    if seen is not None:
        t.detected(seen.at, "rejected: bad_signature")
    t.expect(
        "rejected_by_reason",
        measured={"sent": sent, **counted},
        # -3: forgeries still in flight when the counters were read.
        held=sent > 0 and sum(counted.values()) >= sent - 3 and counted["bad_signature"] > 0,
        expected="every forgery rejected: bad_signature / unknown_component, or as an answer "
        "to a request already answered",
    )
    converted = after.counters.get("converted", 0) - before.counters.get("converted", 0)
    genuine = [i for i in t.observer.indications_after(t0) if i.vb is not None]
    t.expect(
        "genuine_go_on",
        measured={"converted": converted, "indications_with_vb": len(genuine)},
        held=converted > 0 and bool(genuine),
        expected="> 0",
    )
