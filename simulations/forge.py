"""The attacker's workshop: forged, tampered and junk payloads (no component code involved).

Everything here uses only public formats - the wire models and the security
module's envelope format, which a competent attacker knows (Kerckhoffs) - and
keys the attacker makes up. Nothing reads a component's secrets.
"""

from __future__ import annotations

import json
import os
import time

from security_module.envelope import SealedEnvelope, Sealer
from wire.codec import encode
from wire.messages import SAMPLE_MSG_TYPE, Sample

FORGED_VM = 987_654.321  # a value no genuine gas meter of the testbed indicates


def forged_sample(
    topic: str, sensor_id: str, seq: int, *, recipient: str = "mother-unit", boot: int = 1
) -> bytes:
    """A sample sealed the right way under a key the attacker made up (A_DATA_GEN)."""
    sample = Sample(
        sensor_id=sensor_id,
        boot=boot,
        seq=seq,
        created_at=time.time(),
        vm=FORGED_VM,
        p=101.3,
        t=288.0,
    )
    sealer = Sealer(os.urandom(32), sensor_id, recipient, boot)
    sealer.seq = seq
    return encode(sealer.seal(SAMPLE_MSG_TYPE, topic, encode(sample)))


def bit_flipped(envelope_json: bytes, bit: int = 0) -> bytes:
    """A captured envelope with one bit of its ciphertext inverted (T2/T3)."""
    env = SealedEnvelope.model_validate_json(envelope_json)
    data = bytearray(env.ciphertext)
    data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    return env.model_copy(update={"ciphertext": bytes(data)}).model_dump_json().encode()


def resequenced(envelope_json: bytes, seq: int) -> bytes:
    """A captured envelope relabelled with another sequence number (replay under a new number)."""
    env = SealedEnvelope.model_validate_json(envelope_json)
    return env.model_copy(update={"seq": seq}).model_dump_json().encode()


def junk(n: int) -> bytes:
    """Bytes that are not JSON."""
    return b"\xff\xfe junk " + os.urandom(16).hex().encode() + str(n).encode()


def wrong_shape(n: int) -> bytes:
    """JSON of the wrong shape."""
    return json.dumps({"v": 1, "kind": "nonsense", "n": n}).encode()
