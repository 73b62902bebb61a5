"""The network-edge parser: any bytes either parse into a model or raise RejectedPayload."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_module.envelope import SealedEnvelope
from wire import messages as m
from wire.codec import MAX_PAYLOAD_BYTES, RejectedPayload, decode, encode
from wire.topics import Topics

MODELS = [
    m.ComponentStatus,
    m.Sample,
    m.PairingMessage,
    m.SensorControl,
    m.ConversionRequest,
    m.ConversionResponse,
    m.RecordBatch,
    m.StorageAck,
    m.Indication,
    m.InstrumentState,
    m.Command,
    m.CommandReply,
    SealedEnvelope,
]

SAMPLE = m.Sample(sensor_id="sensor-1", boot=3, seq=7, created_at=1.5, vm=12.5, p=101.0, t=290.0)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=512), model=st.sampled_from(MODELS))
def test_random_bytes_never_escape_as_anything_but_rejected(payload: bytes, model: type) -> None:
    with pytest.raises(RejectedPayload) as info:
        decode(model, payload, "t")
    assert info.value.reason in {"malformed", "schema", "too_large"}


@settings(max_examples=200, deadline=None)
@given(
    obj=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    ),
    model=st.sampled_from(MODELS),
)
def test_random_json_is_rejected_as_schema(obj: object, model: type) -> None:
    payload = json.dumps(obj).encode()
    with pytest.raises(RejectedPayload) as info:
        decode(model, payload, "t")
    assert info.value.reason == "schema"


def test_round_trip_keeps_every_field() -> None:
    assert decode(m.Sample, encode(SAMPLE), "t") == SAMPLE


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        pytest.param(lambda d: {**d, "extra": 1}, "schema", id="unknown-field"),
        pytest.param(lambda d: {**d, "v": 2}, "schema", id="future-version"),
        pytest.param(lambda d: {**d, "kind": "sensor_data"}, "schema", id="wrong-kind"),
        pytest.param(lambda d: {**d, "t": -1.0}, "schema", id="negative-temperature"),
        pytest.param(lambda d: {**d, "seq": 2**64}, "schema", id="seq-overflow"),
        pytest.param(lambda d: {**d, "sensor_id": "a/b"}, "schema", id="topic-separator-in-id"),
    ],
)
def test_malformed_fields_are_rejected(mutation, reason: str) -> None:  # type: ignore[no-untyped-def]
    payload = json.dumps(mutation(SAMPLE.model_dump())).encode()
    with pytest.raises(RejectedPayload) as info:
        decode(m.Sample, payload, "t")
    assert info.value.reason == reason


def test_nan_is_rejected() -> None:
    payload = encode(SAMPLE).replace(b'"vm":12.5', b'"vm":NaN')
    with pytest.raises(RejectedPayload):
        decode(m.Sample, payload, "t")


def test_oversized_payload_is_rejected_before_parsing() -> None:
    with pytest.raises(RejectedPayload) as info:
        decode(m.Sample, b" " * (MAX_PAYLOAD_BYTES + 1), "t")
    assert info.value.reason == "too_large"


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "x" * 65, "a\x00b"])
def test_topic_segments_cannot_escape_their_level(bad: str) -> None:
    with pytest.raises(ValueError, match="topic segment"):
        Topics("gm-1").sensor_data(bad)


def test_sensor_id_of_topic() -> None:
    t = Topics("gm-1")
    assert t.sensor_id_of(t.sensor_data("sensor-9")) == "sensor-9"
    assert t.sensor_id_of(t.storage_ack) is None
    assert t.sensor_id_of("mi/other/sensor/sensor-9/data") is None
