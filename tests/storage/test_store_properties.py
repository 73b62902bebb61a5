"""Property tests for what comes from the network or from a file nobody vouches for:
the storage query models, leaf batches, and the verifier's reading of stored rows."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from security_module.checkpoint import NoteSigner
from testbed.verify_store import verify_rows
from wire.codec import RejectedPayload, decode
from wire.messages import RecordLeafBatch, StorageQuery, StorageReply

pytestmark = pytest.mark.timeout(120)

SIGNER = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())
ORIGIN = "welmec-testbed/gm-0001/records"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=400) | json_values.map(lambda v: repr(v).encode()))
@pytest.mark.parametrize("model", [StorageQuery, StorageReply, RecordLeafBatch])
def test_network_parsers_only_reject(model: type, payload: bytes) -> None:
    try:
        decode(model, payload, "mi/gm-0001/storage/query")
    except RejectedPayload as e:
        assert e.reason in ("malformed", "schema", "too_large")  # noqa: PT017 - any of them


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-3, 30) | st.text(max_size=3) | st.none(),
            st.binary(max_size=200) | st.text(max_size=200) | st.integers() | st.none(),
            st.floats(allow_nan=True) | st.none(),
        ),
        max_size=25,
    ),
    cps=st.lists(st.tuples(st.integers(-2, 40), st.text(max_size=200) | st.none()), max_size=5),
)
def test_verifier_never_crashes_and_never_passes_garbage(
    rows: list[tuple[object, object, object]], cps: list[tuple[object, object]]
) -> None:
    """Whatever a file holds, the verifier returns a result; a non-empty store of
    junk never verifies (there is no signed checkpoint for it)."""
    result = verify_rows(
        sorted(rows, key=lambda r: r[0] if isinstance(r[0], int) else -99),
        cps, verifier=SIGNER.verifier, origin=ORIGIN, instrument="gm-0001",
        approved={"remote_processing": ["ab" * 32]},
    )
    if any(isinstance(s, int) and s >= 0 for s, _, _ in rows):
        assert not result.ok
    assert set(result.to_dict()) >= {"ok", "bad_records", "problems"}
