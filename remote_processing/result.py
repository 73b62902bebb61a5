"""The signed processing result (WELMEC 7.3 §4.4; T3/T4, P2/U2): what a response binds.

A :class:`~wire.messages.ConversionResponse` is signed with the component's
Ed25519 identity key over ``signing_input(CONTEXT_PROCESSING_RESULT, response
without "signature")`` (``security_module.signing``). The signature therefore
binds, in one statement:

- ``request_id`` and ``inputs_digest``: the request and exactly the inputs it
  carried (T3: a result cannot be moved to another request or other inputs);
- ``results``: the converted values, in input order;
- ``component_id``, ``software_id``, ``parameter_version``: who computed them,
  with which software and which legally relevant parameters (P2/U2);
- ``computed_at``: when (T7 freshness, checked by the mother unit).

``inputs_digest`` is SHA-256 (hex) over the canonical JSON (sorted keys, no
spaces, shortest float repr) of the list of inputs, each dumped as its wire
model. The mother unit recomputes it from the request it keeps pending
(docs/adr/0020-signed-remote-processing-results.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_module.signing import CONTEXT_PROCESSING_RESULT, canonical_json, sign
from wire.messages import ConversionInput, ConversionRequest, ConversionResponse

SIGNATURE_FIELD = "signature"


def inputs_digest(inputs: Sequence[ConversionInput]) -> str:
    """SHA-256 hex over the canonical JSON of the inputs, in request order."""
    return hashlib.sha256(canonical_json([i.model_dump(mode="json") for i in inputs])).hexdigest()


def signed_response(
    request: ConversionRequest,
    results: Sequence[float],
    *,
    component_id: str,
    software_id: str,
    parameter_version: str,
    computed_at: float,
    key: Ed25519PrivateKey,
) -> ConversionResponse:
    """The response to ``request``, signed by ``key`` (T4: authenticity of the result)."""
    unsigned = ConversionResponse(
        request_id=request.request_id,
        component_id=component_id,
        software_id=software_id,
        parameter_version=parameter_version,
        inputs_digest=inputs_digest(request.inputs),
        results=list(results),
        computed_at=computed_at,
    )
    signature = sign(unsigned, key, CONTEXT_PROCESSING_RESULT, exclude={SIGNATURE_FIELD})
    return unsigned.model_copy(update={SIGNATURE_FIELD: base64.b64encode(signature).decode()})
