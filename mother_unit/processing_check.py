"""Checking a remote processing result before it is used (WELMEC 7.3 §4.4). No I/O.

The mother unit keeps every conversion request it sent until a result for it
is accepted. A :class:`~wire.messages.ConversionResponse` is checked, in this
order (cheap checks first, so a flood of garbage costs no signature checks):

1. it answers a request we are waiting for (T3: no replayed or re-ordered
   result is used; only the first valid response per request id counts);
2. it comes from a processing component of this instrument: a provisioned
   device whose certificate (role ``remote_processing``) chains to the
   manufacturer CA (T4);
3. its Ed25519 signature verifies with that component's key (T2/T3/T4);
4. ``inputs_digest`` equals the digest of the inputs we sent (T3: the result
   is bound to exactly those inputs) and there is one result per input;
5. it is fresh (T7): ``computed_at`` not before the request was first sent
   and not in the future, each with :data:`CLOCK_SKEW_S` of tolerance for the
   two clocks, and ``now - computed_at`` within the approval's
   ``max_transmission_delay_ms`` - with no tolerance added, so a clock that
   lags makes results late (resent, DEGRADED), never a late result accepted.

Failing any of these raises :class:`ResultRejected`: the result is not used
and the request stays pending, to be resent (T6). A result that passes is
*authentic*; then :class:`CheckedResult` says whether it is also *approved*:
its software identifier is one the type approval lists for
``remote_processing`` and its parameter version is the approved one (P2/U2,
4.4.4). An authentic but unapproved result is evidence of an intervention;
the caller logs it and does not indicate its values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from security_module.errors import SignatureInvalid
from security_module.provisioning import Provisioned
from security_module.signing import CONTEXT_PROCESSING_RESULT, canonical_json, verify
from security_module.type_approval import TypeApproval
from wire.messages import ConversionInput, ConversionRequest, ConversionResponse

KIND = "remote_processing"
# Tolerance for the difference between the mother unit's and the processing's
# clocks (NTP keeps hosts within milliseconds; 0.5 s leaves room for a bad
# day). It widens only the plausibility window of ``computed_at``, never T7.
CLOCK_SKEW_S = 0.5

ProcessingTrust = Mapping[str, Ed25519PublicKey]  # component id -> verified public key


def load_processing_trust(material: Provisioned) -> dict[str, Ed25519PublicKey]:
    """Keys of the instrument's processing components, each certificate checked (T4).

    Only devices provisioned with the role ``remote_processing`` are trusted;
    ``Provisioned.public_key`` verifies the certificate against the
    manufacturer CA and its role and name (raises CertificateInvalid).
    """
    return material.public_keys(KIND)


def inputs_digest(inputs: Sequence[ConversionInput]) -> str:
    """SHA-256 hex over the canonical JSON of the inputs (same definition as the processing's)."""
    return hashlib.sha256(canonical_json([i.model_dump(mode="json") for i in inputs])).hexdigest()


class ResultRejected(Exception):
    """A response that must not be used (T6). ``reason`` is the stable counter key.

    ``authentic`` is True when the response carried a valid signature of a
    processing component of ours: then the fault is that component's (or its
    input was tampered with on the way), which is worth a logbook entry; an
    unauthenticated response is only counted (anyone can publish garbage).
    """

    reason = "processing_result_invalid"
    authentic = False

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = fields


class NotRequested(ResultRejected):
    """Answers no request we are waiting for: replayed, duplicated or made up (T3)."""

    reason = "unknown_request"


class UnknownComponent(ResultRejected):
    """Signed (or claimed) by a component that is not a processing component of ours."""

    reason = "unknown_component"


class ResultSignatureInvalid(ResultRejected):
    """Missing, malformed or not verifying with the component's key (T4, A_Spoofing)."""

    reason = "bad_signature"


class InputsDigestMismatch(ResultRejected):
    """The result was computed for other inputs than we sent (T3, A_Tampering_and_Injection)."""

    reason = "inputs_digest_mismatch"
    authentic = True


class ResultCountMismatch(ResultRejected):
    reason = "result_count_mismatch"
    authentic = True


class ResultNotFresh(ResultRejected):
    """Computed before the request, in the future, or older than T7 allows."""

    reason = "stale_result"
    authentic = True


@dataclass(frozen=True)
class CheckedResult:
    """An authentic result for a pending request, and whether it is approved (P2/U2)."""

    response: ConversionResponse
    software_approved: bool
    parameters_approved: bool
    transmission_delay_ms: float

    @property
    def approved(self) -> bool:
        return self.software_approved and self.parameters_approved


def check_response(
    response: ConversionResponse,
    request: ConversionRequest,
    *,
    trust: ProcessingTrust,
    approval: TypeApproval,
    now: float,
) -> CheckedResult:
    """Check ``response`` against the pending ``request``; raise :class:`ResultRejected`."""
    rid = response.request_id
    if rid != request.request_id:
        raise NotRequested(
            "response names another request", request_id=rid, expected=request.request_id
        )
    key = trust.get(response.component_id)
    if key is None:
        raise UnknownComponent(
            "not a processing component of this instrument",
            component_id=response.component_id,
            request_id=rid,
        )
    try:
        signature = base64.b64decode(response.signature, validate=True)
        verify(
            response,
            signature,
            key,
            CONTEXT_PROCESSING_RESULT,
            exclude={"signature"},
            signer=response.component_id,
        )
    except (binascii.Error, ValueError, SignatureInvalid) as e:
        raise ResultSignatureInvalid(
            "result signature does not verify",
            component_id=response.component_id,
            request_id=rid,
        ) from e
    expected_digest = inputs_digest(request.inputs)
    if response.inputs_digest != expected_digest:
        raise InputsDigestMismatch(
            "result is bound to other inputs",
            request_id=rid,
            expected=expected_digest,
            got=response.inputs_digest,
        )
    if len(response.results) != len(request.inputs):
        raise ResultCountMismatch(
            "one result per input expected",
            request_id=rid,
            expected=len(request.inputs),
            got=len(response.results),
        )
    _check_fresh(response, request, approval, now)
    return CheckedResult(
        response=response,
        software_approved=response.software_id in approval.software_ids.get(KIND, []),
        parameters_approved=response.parameter_version == approval.parameters.version,
        transmission_delay_ms=(now - response.computed_at) * 1000.0,
    )


def _check_fresh(
    response: ConversionResponse, request: ConversionRequest, approval: TypeApproval, now: float
) -> None:
    # T7: the maximum transmission delay is a legally relevant parameter of the approval.
    max_delay_s = approval.parameters.max_transmission_delay_ms / 1000.0
    at = response.computed_at
    fields = {"request_id": response.request_id, "computed_at": at, "now": now}
    if at < request.sent_at - CLOCK_SKEW_S:
        raise ResultNotFresh(
            "result computed before the request was sent", sent_at=request.sent_at, **fields
        )
    if at > now + CLOCK_SKEW_S:
        raise ResultNotFresh("result computed in the future", **fields)
    if now - at > max_delay_s:
        raise ResultNotFresh(
            "result older than the maximum transmission delay",
            max_delay_ms=approval.parameters.max_transmission_delay_ms,
            **fields,
        )
