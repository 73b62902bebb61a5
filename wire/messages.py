"""Versioned message models for every payload on the broker.

Each model carries ``v`` (the contract version) and ``kind`` (a literal tag), so
a receiver can tell an old or foreign message from a malformed one. Models are
frozen and reject unknown fields: anything that does not match exactly is
rejected at the edge (T6: corrupted data must not be used).

Binary fields (ciphertexts, signatures) travel as standard base64 strings.
Times are POSIX seconds (float, UTC) on the clock of the producer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION: Literal[1] = 1

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
B64 = Annotated[str, Field(max_length=200_000, pattern=r"^[A-Za-z0-9+/]*={0,2}$")]
Counter = Annotated[int, Field(ge=0)]
Seq = Annotated[int, Field(ge=0, lt=2**64)]
Boot = Annotated[int, Field(ge=0, lt=2**32)]

ComponentKind = Literal[
    # remote_portal: legally non-relevant software (WELMEC 7.3 §4.3), behind the
    # mother unit's protective interface; it publishes a status like every process.
    "mother_unit", "remote_sensor", "remote_storage", "remote_processing", "remote_portal"
]
InstrumentStateName = Literal["STARTING", "OPERATIONAL", "DEGRADED", "INHIBITED", "PAIRING"]


class WireModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    v: Literal[1] = CONTRACT_VERSION


# -- availability ---------------------------------------------------------------


class ComponentStatus(WireModel):
    """Retained on ``status/<component-id>``; the Last Will sets ``online`` false."""

    kind: Literal["component_status"] = "component_status"
    component: ComponentKind
    component_id: Identifier
    online: bool
    time: float
    pid: int | None = None
    software_id: str | None = None
    heartbeat_s: float | None = None
    counters: dict[str, int] = Field(default_factory=dict)
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


# -- sensor link (4.1) --------------------------------------------------------------


class Sample(WireModel):
    """One measurement as the sensor made it: the plaintext inside the sealed envelope."""

    kind: Literal["sample"] = "sample"
    sensor_id: Identifier
    boot: Boot
    seq: Seq
    created_at: float  # T7: creation time on the sensor's clock
    vm: float = Field(ge=0, allow_inf_nan=False)  # index at measurement conditions, m3
    p: float = Field(gt=0, allow_inf_nan=False)  # absolute pressure, kPa
    t: float = Field(gt=0, allow_inf_nan=False)  # gas temperature, K


# A sealed sample on ``sensor/<id>/data`` is a ``security_module.envelope.SealedEnvelope``
# (msg_type "sample"): ChaCha20-Poly1305 under the pairing key, nonce = boot ‖ seq,
# associated data binding sender, recipient, type and topic. Its plaintext is a Sample.
SAMPLE_MSG_TYPE = "sample"
# Mother unit -> sensor control messages travel sealed the same way (the other
# direction key), so nobody else can acknowledge a sensor's samples away.
CONTROL_MSG_TYPE = "control"


class PairingMessage(WireModel):
    """One step of the pairing ceremony (P8/U8) on the pairing topics.

    ``body`` is the JSON of the security module's model for the step
    (PairingHello, PairingResponse, PairingConfirm); "request" asks a sensor to
    start (no body), "result" tells it whether the mother unit kept the pairing.
    """

    kind: Literal["pairing"] = "pairing"
    step: Literal["request", "hello", "response", "confirm", "result"]
    body: str = Field(default="", max_length=16_384)
    ok: bool = True
    message: str = Field(default="", max_length=500)


class SensorHeartbeat(WireModel):
    kind: Literal["sensor_heartbeat"] = "sensor_heartbeat"
    sensor_id: Identifier
    boot: Boot
    next_seq: Seq
    time: float


class SensorControl(WireModel):
    """Mother unit -> sensor: acknowledge up to a sequence number, ask for a retransmission."""

    kind: Literal["sensor_control"] = "sensor_control"
    ack_boot: Boot
    ack_upto: int = Field(ge=-1)  # highest seq of ``ack_boot`` accepted without a gap
    retransmit: list[tuple[Boot, Seq]] = Field(default_factory=list, max_length=4096)


# -- processing link (4.4) -------------------------------------------------------


class ConversionInput(WireModel):
    kind: Literal["conversion_input"] = "conversion_input"
    ref: Identifier  # "<sensor>:<boot>:<seq>", unique per sample
    vm: float = Field(allow_inf_nan=False)
    p: float = Field(allow_inf_nan=False)
    t: float = Field(allow_inf_nan=False)


class ConversionRequest(WireModel):
    kind: Literal["conversion_request"] = "conversion_request"
    request_id: Identifier
    sent_at: float
    test: bool = False  # a fixed test case, not a measurement
    inputs: list[ConversionInput] = Field(min_length=1, max_length=1000)


class ConversionResponse(WireModel):
    """Signed by the processing component; binds request, inputs, results and identity."""

    kind: Literal["conversion_response"] = "conversion_response"
    request_id: Identifier
    component_id: Identifier
    software_id: str
    parameter_version: str
    inputs_digest: str  # SHA-256 hex over the canonical request inputs
    results: list[float] = Field(max_length=1000)
    computed_at: float
    signature: B64 = ""


# -- storage link (4.2) ------------------------------------------------------------


class MeasurementRecord(WireModel):
    """One stored measurement; a leaf of the records Merkle log."""

    kind: Literal["measurement_record"] = "measurement_record"
    instrument: Identifier
    seq: Seq  # record sequence number = leaf index in the records log
    sensor_id: Identifier
    sample_boot: Boot
    sample_seq: Seq
    created_at: float
    received_at: float
    vm: float = Field(allow_inf_nan=False)
    vb: float | None = Field(default=None, allow_inf_nan=False)
    p: float = Field(allow_inf_nan=False)
    t: float = Field(allow_inf_nan=False)
    software_ids: dict[str, str] = Field(default_factory=dict)
    parameter_version: str = ""
    # Why vb is None: the conversion was not usable (4.4: e.g. processing software not approved).
    vb_unavailable: str | None = Field(default=None, max_length=500)
    # L3: hash chain inside the log - hex RFC 9162 leaf hash of record ``seq - 1``
    # ("" for record 0), so a verifier names the one altered record between checkpoints.
    prev_leaf_hash: str = Field(default="", pattern=r"^(?:[0-9a-f]{64})?$")


class RecordBatch(WireModel):
    kind: Literal["record_batch"] = "record_batch"
    batch_id: Identifier
    records: list[MeasurementRecord] = Field(min_length=1, max_length=1000)
    checkpoint: str = ""  # signed checkpoint of the records log after this batch


class StorageAck(WireModel):
    """Sent only after a durable commit: the records up to ``stored_upto`` are on disk.

    Signed by the store's device key (context ``storage-ack``): an acknowledgement makes
    the mother unit release samples, so a forged one would lose data (L1, A_Spoofing).
    """

    kind: Literal["storage_ack"] = "storage_ack"
    component_id: Identifier = "storage"
    batch_id: Identifier
    stored_upto: int = Field(ge=-1)  # highest record seq stored without a gap
    tree_size: Counter
    error: str | None = None
    # The store holds different bytes for this seq: nothing from here on was stored.
    conflict_at: int | None = Field(None, ge=0)
    signature: str = ""  # base64 Ed25519 over the canonical JSON without this field


LeafText = Annotated[str, Field(min_length=2, max_length=8192)]


class RecordLeafBatch(WireModel):
    """Records as leaves of the records log, byte-exact (4.2, L3).

    Each leaf is ``security_module.signing.canonical_json`` of a MeasurementRecord,
    carried as text so that the store keeps exactly the bytes the mother unit hashed
    and never re-encodes. ``checkpoint`` is the signed checkpoint (C2SP note) of the
    records log after the last leaf; the store keeps it with the records.
    """

    kind: Literal["record_leaf_batch"] = "record_leaf_batch"
    batch_id: Identifier
    first_seq: Seq
    leaves: list[LeafText] = Field(min_length=1, max_length=1000)
    checkpoint: str = Field(default="", max_length=4096)


StorageQueryOp = Literal["info", "records", "checkpoints", "inclusion", "consistency"]


class StorageQuery(WireModel):
    """A question on ``storage/query``; the store answers on ``storage/reply/<reply_to>``.

    ``records``: by sequence range (``first_seq``..``last_seq``) and/or time range
    (``since``..``until`` on the records' creation time), at most ``limit``.
    ``checkpoints``: stored signed checkpoints with ``first_seq <= tree_size <= last_seq``.
    ``inclusion``: proof of leaf ``leaf_index`` in the tree of ``tree_size``;
    ``consistency``: proof from ``first_size`` to ``tree_size``. The store only
    serves; proofs are checked by the asker against a signed checkpoint (L6).
    """

    kind: Literal["storage_query"] = "storage_query"
    query_id: Identifier
    reply_to: Identifier
    op: StorageQueryOp
    first_seq: Seq | None = None
    last_seq: Seq | None = None
    since: float | None = Field(default=None, allow_inf_nan=False)
    until: float | None = Field(default=None, allow_inf_nan=False)
    leaf_index: Seq | None = None
    first_size: Counter | None = None
    tree_size: Counter | None = None
    limit: int = Field(default=200, ge=1, le=500)


class StoredLeaf(WireModel):
    kind: Literal["stored_leaf"] = "stored_leaf"
    seq: Seq
    leaf: LeafText


class StoredCheckpoint(WireModel):
    kind: Literal["stored_checkpoint"] = "stored_checkpoint"
    tree_size: Counter
    note: str = Field(max_length=4096)


class StorageReply(WireModel):
    """The store's answer; ``more`` says that a further page exists beyond ``limit``."""

    kind: Literal["storage_reply"] = "storage_reply"
    query_id: Identifier
    ok: bool = True
    error: str | None = Field(default=None, max_length=500)
    tree_size: Counter = 0
    records: list[StoredLeaf] = Field(default_factory=list, max_length=500)
    checkpoints: list[StoredCheckpoint] = Field(default_factory=list, max_length=500)
    proof: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list, max_length=128
    )
    more: bool = False


# -- mother unit publications ------------------------------------------------------


class Indication(WireModel):
    """What the display shows (retained on ``mother/indication``)."""

    kind: Literal["indication"] = "indication"
    instrument: Identifier
    sensor_id: Identifier
    record_seq: int
    vm: float
    vb: float | None
    vb_unavailable: str | None = None
    unit: str = "m3"
    time: float
    signature: B64 = ""


class InstrumentState(WireModel):
    """Retained on ``mother/state``: what the instrument is doing and why."""

    kind: Literal["instrument_state"] = "instrument_state"
    instrument: Identifier
    state: InstrumentStateName
    reasons: list[str] = Field(default_factory=list)
    time: float
    event_counter: Counter = 0
    counters: dict[str, int] = Field(default_factory=dict)
    rejected: dict[str, int] = Field(default_factory=dict)
    software_ids: dict[str, str] = Field(default_factory=dict)
    # MID Annex I 8.3: each identifier above and whether the type approval lists it.
    software_approved: dict[str, bool] = Field(default_factory=dict)
    paired_sensors: list[str] = Field(default_factory=list)
    t7_ms: dict[str, float] = Field(default_factory=dict)  # p50/p99/max of transmission delay


# S (protective software interface): a command of legally non-relevant software is
# signed by its issuer (Ed25519, security_module.signing, ``signature`` excluded) in
# this context, so a signature made for anything else can never pass as a command.
NON_RELEVANT_COMMAND_CONTEXT = "welmec-testbed/non-relevant-command/v1"


class Command(WireModel):
    kind: Literal["command"] = "command"
    command_id: Identifier
    name: Identifier
    issuer: Identifier
    args: dict[str, str | int | float | bool] = Field(default_factory=dict)
    signature: B64 = ""


class CommandReply(WireModel):
    kind: Literal["command_reply"] = "command_reply"
    command_id: Identifier
    ok: bool
    message: str = ""
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
