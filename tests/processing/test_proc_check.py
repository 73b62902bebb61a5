"""The pure check of a remote processing result (4.4; T3, T4, T7, P2/U2), table-driven.

Responses are made by the real signer of ``remote_processing`` so that the two
independent definitions of the inputs digest (processing and mother unit) are
checked against each other as well.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mother_unit.processing_check import (
    CLOCK_SKEW_S,
    InputsDigestMismatch,
    NotRequested,
    ResultCountMismatch,
    ResultNotFresh,
    ResultRejected,
    ResultSignatureInvalid,
    UnknownComponent,
    check_response,
    inputs_digest,
)
from remote_processing.conversion import ConversionParameters, convert
from remote_processing.result import inputs_digest as processing_inputs_digest
from remote_processing.result import signed_response
from security_module.signing import CONTEXT_PROCESSING_RESULT, signing_input
from security_module.type_approval import (
    GasMeterParameters,
    TypeApproval,
    default_known_answer_tests,
)
from wire.codec import decode, encode
from wire.messages import ConversionInput, ConversionRequest, ConversionResponse

pytestmark = pytest.mark.timeout(30)

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
APPROVED_ID = "a" * 64
OTHER_ID = "b" * 64
PARAMS = GasMeterParameters()
APPROVAL = TypeApproval(
    approval_id="TA-test",
    instrument_id="gm-0001",
    issued_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    software_ids={"remote_processing": [APPROVED_ID], "mother_unit": ["c" * 64]},
    approved_sensor_ids=["sensor-1"],
    parameters=PARAMS,
    known_answer_tests=default_known_answer_tests(PARAMS),
)
TRUST = {"processing": KEY.public_key()}
T0 = 1_750_000_000.0
REQUEST = ConversionRequest(
    request_id="r-1",
    sent_at=T0,
    inputs=[
        ConversionInput(ref="sensor-1:0:0", vm=1.5, p=101.0, t=290.0),
        ConversionInput(ref="sensor-1:0:1", vm=1.6, p=101.2, t=290.1),
    ],
)


def respond(
    request: ConversionRequest = REQUEST,
    *,
    key: Ed25519PrivateKey = KEY,
    component_id: str = "processing",
    software_id: str = APPROVED_ID,
    version: str = PARAMS.version,
    computed_at: float = T0 + 0.01,
    results: list[float] | None = None,
) -> ConversionResponse:
    params = ConversionParameters.from_approval(PARAMS)
    values = [convert(i.vm, i.p, i.t, params) for i in request.inputs]
    return signed_response(
        request,
        values if results is None else results,
        component_id=component_id,
        software_id=software_id,
        parameter_version=version,
        computed_at=computed_at,
        key=key,
    )


def tampered(**update: object) -> ConversionResponse:
    """A genuine response with fields changed after signing (keeps the signature)."""
    return respond().model_copy(update=update)


@dataclass(frozen=True)
class Case:
    response: Callable[[], ConversionResponse]
    now: float = T0 + 0.05
    request: ConversionRequest = REQUEST
    rejected: type[ResultRejected] | None = None
    software_approved: bool = True
    parameters_approved: bool = True


OTHER_REQUEST = REQUEST.model_copy(update={"request_id": "r-2"})
MAX_S = PARAMS.max_transmission_delay_ms / 1000

CASES = {
    "good": Case(respond),
    "good-processing-clock-ahead-within-skew": Case(
        lambda: respond(computed_at=T0 + 0.05 + CLOCK_SKEW_S - 0.01)
    ),
    "bad-signature-other-key": Case(
        lambda: respond(key=OTHER_KEY), rejected=ResultSignatureInvalid
    ),
    "bad-signature-result-changed": Case(
        lambda: tampered(results=[1.0, 2.0]), rejected=ResultSignatureInvalid
    ),
    "bad-signature-software-id-changed": Case(
        lambda: tampered(software_id=OTHER_ID), rejected=ResultSignatureInvalid
    ),
    "unsigned": Case(lambda: tampered(signature=""), rejected=ResultSignatureInvalid),
    "signature-too-short": Case(
        lambda: tampered(signature="AAAA"), rejected=ResultSignatureInvalid
    ),
    "unknown-component": Case(
        lambda: respond(component_id="processing-2"), rejected=UnknownComponent
    ),
    "wrong-request": Case(respond, request=OTHER_REQUEST, rejected=NotRequested),
    "wrong-digest": Case(
        lambda: respond(
            ConversionRequest(
                request_id="r-1",
                sent_at=T0,
                inputs=[REQUEST.inputs[0], REQUEST.inputs[1].model_copy(update={"vm": 9.9})],
            )
        ),
        rejected=InputsDigestMismatch,
    ),
    "result-count": Case(lambda: respond(results=[1.0]), rejected=ResultCountMismatch),
    "stale": Case(respond, now=T0 + 0.01 + MAX_S + 0.001, rejected=ResultNotFresh),
    "computed-before-request": Case(
        lambda: respond(computed_at=T0 - CLOCK_SKEW_S - 0.01), rejected=ResultNotFresh
    ),
    "computed-in-future": Case(
        lambda: respond(computed_at=T0 + 0.05 + CLOCK_SKEW_S + 0.01), rejected=ResultNotFresh
    ),
    "unapproved-software-id": Case(lambda: respond(software_id=OTHER_ID), software_approved=False),
    "wrong-parameter-version": Case(lambda: respond(version="0"), parameters_approved=False),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_check_response(case: Case) -> None:
    # Through the wire and back: what the mother unit checks is what it received.
    response = decode(ConversionResponse, encode(case.response()), "t")
    if case.rejected is not None:
        with pytest.raises(case.rejected) as info:
            check_response(response, case.request, trust=TRUST, approval=APPROVAL, now=case.now)
        assert info.value.reason  # every rejection has a counter key
        return
    checked = check_response(response, case.request, trust=TRUST, approval=APPROVAL, now=case.now)
    assert checked.software_approved is case.software_approved
    assert checked.parameters_approved is case.parameters_approved
    assert checked.approved is (case.software_approved and case.parameters_approved)


def test_authentic_rejections_are_marked_authentic() -> None:
    """Only a validly signed response is worth a logbook entry; forgeries are only counted."""
    assert InputsDigestMismatch.authentic
    assert ResultNotFresh.authentic
    assert not ResultSignatureInvalid.authentic
    assert not UnknownComponent.authentic
    assert not NotRequested.authentic


def test_both_sides_define_the_same_inputs_digest() -> None:
    awkward = [
        ConversionInput(ref="s:0:0", vm=0.1 + 0.2, p=1e-7, t=1e300),
        ConversionInput(ref="s:0:1", vm=0.0, p=101.325, t=288.15),
    ]
    assert inputs_digest(awkward) == processing_inputs_digest(awkward)
    assert inputs_digest(awkward) != inputs_digest(list(reversed(awkward)))


def test_signature_is_over_the_documented_bytes() -> None:
    """ADR 0020: Ed25519 over context ‖ 0x00 ‖ canonical JSON without the signature field."""
    response = respond()
    message = signing_input(CONTEXT_PROCESSING_RESULT, response, exclude={"signature"})
    KEY.public_key().verify(base64.b64decode(response.signature), message)


def test_real_conversion_passes_the_approved_known_answer_tests() -> None:
    params = ConversionParameters.from_approval(APPROVAL.parameters)
    for kat in APPROVAL.known_answer_tests:
        assert kat.check(convert(kat.vm_m3, kat.pressure_kpa, kat.temperature_k, params)), kat.name
