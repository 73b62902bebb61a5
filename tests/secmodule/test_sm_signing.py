"""Signed documents, C2SP checkpoints / signed notes, and the micro benchmark."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from security_module.bench import run_micro
from security_module.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    note_key_id,
    open_checkpoint,
    parse_signed_note,
)
from security_module.errors import CheckpointMalformed, SecurityError, SignatureInvalid
from security_module.primitives import ed25519_public_bytes
from security_module.signing import (
    CONTEXT_INDICATION,
    CONTEXT_PROCESSING_RESULT,
    canonical_json,
    sign,
    signing_input,
    verify,
)

KEY = Ed25519PrivateKey.generate()


class Result(BaseModel):
    sensor_id: str
    vb_m3: float
    seq: int


def test_canonical_encoding_is_documented_bytes() -> None:
    r = Result(sensor_id="sensor-1", vb_m3=0.1, seq=3)
    assert canonical_json(r) == b'{"sensor_id":"sensor-1","seq":3,"vb_m3":0.1}'
    assert signing_input(CONTEXT_PROCESSING_RESULT, r) == (
        b"welmec-testbed/processing-result/v1\x00" + canonical_json(r))


def test_sign_verify_and_domain_separation() -> None:
    r = Result(sensor_id="sensor-1", vb_m3=12.5, seq=1)
    sig = sign(r, KEY, CONTEXT_PROCESSING_RESULT)
    verify(r, sig, KEY.public_key(), CONTEXT_PROCESSING_RESULT)
    with pytest.raises(SignatureInvalid):  # same bytes, other purpose
        verify(r, sig, KEY.public_key(), CONTEXT_INDICATION)
    with pytest.raises(SignatureInvalid):
        verify(r.model_copy(update={"vb_m3": 12.500001}), sig, KEY.public_key(),
               CONTEXT_PROCESSING_RESULT)
    with pytest.raises(SignatureInvalid, match="wrong length"):
        verify(r, sig[:-1], KEY.public_key(), CONTEXT_PROCESSING_RESULT)


def test_errors_carry_structured_fields() -> None:
    err = SignatureInvalid("bad", signer="processing", seq=4)
    assert isinstance(err, SecurityError)
    assert err.fields == {"signer": "processing", "seq": 4}
    assert err.signer == "processing"
    assert "seq=4" in str(err)


def test_checkpoint_note_format() -> None:
    signer = NoteSigner("example.com/log", KEY)
    cp = Checkpoint("example.com/log", 42, bytes(range(32)), ("timestamp 2030-01-01T00:00:00Z",))
    note = signer.sign(cp).note
    body, sig_line = note.split("\n\n")
    assert body + "\n" == cp.text()
    assert body.splitlines() == ["example.com/log", "42",
                                 base64.b64encode(bytes(range(32))).decode(),
                                 "timestamp 2030-01-01T00:00:00Z"]
    assert sig_line.startswith("\u2014 example.com/log ")
    blob = base64.b64decode(sig_line.split(" ")[2])
    # signed-note key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]
    expected_kid = hashlib.sha256(b"example.com/log\n\x01"
                                  + ed25519_public_bytes(KEY.public_key())).digest()[:4]
    assert blob[:4] == expected_kid == note_key_id("example.com/log", KEY.public_key())
    KEY.public_key().verify(blob[4:], cp.text().encode())
    assert open_checkpoint(note, signer.verifier, origin="example.com/log") == cp
    vk = signer.verifier.verifier_key()
    assert vk.startswith("example.com/log+" + expected_kid.hex() + "+")


def test_checkpoint_tampering_and_malformed() -> None:
    signer = NoteSigner("log", KEY)
    note = signer.sign(Checkpoint("log", 5, bytes(32))).note
    with pytest.raises(SignatureInvalid):
        open_checkpoint(note.replace("\n5\n", "\n6\n"), signer.verifier)
    other = NoteVerifier("log", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(SignatureInvalid, match="not signed by the expected key"):
        open_checkpoint(note, other)
    with pytest.raises(CheckpointMalformed):
        parse_signed_note("log\n5\n")
    with pytest.raises(CheckpointMalformed, match="another origin"):
        open_checkpoint(note, signer.verifier, origin="other")
    with pytest.raises(CheckpointMalformed, match="canonical decimal"):
        Checkpoint.parse("log\n05\n" + base64.b64encode(bytes(32)).decode() + "\n")


def test_unknown_signatures_are_ignored() -> None:
    a, b = NoteSigner("a", KEY), NoteSigner("b", Ed25519PrivateKey.generate())
    note = a.sign(Checkpoint("log", 1, bytes(32))).note
    extra = b.sign_note(Checkpoint("log", 1, bytes(32)).text()).split("\n\n")[1]
    cosigned = note + extra
    assert open_checkpoint(cosigned, a.verifier).size == 1
    assert open_checkpoint(cosigned, b.verifier).size == 1


def test_micro_benchmark_reports_everything() -> None:
    r = run_micro(quick=True)
    ops = r["ops_per_s"]
    for name in ("envelope_seal", "envelope_open", "raw_aead_encrypt", "raw_aead_decrypt",
                 "ed25519_sign", "ed25519_verify", "merkle_append",
                 "merkle_inclusion_proof_and_verify"):
        assert ops[name] > 0
    assert r["envelope_open_vs_raw_decrypt"] == pytest.approx(
        ops["envelope_open"] / ops["raw_aead_decrypt"])
