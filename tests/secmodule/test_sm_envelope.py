"""Sealed envelopes and the replay window (T2/T3/T5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from security_module.boot_counter import BootCounter
from security_module.envelope import Opener, SealedEnvelope, Sealer
from security_module.errors import (
    AuthenticationFailed,
    ReplayDetected,
    SecurityError,
    StateFileError,
)
from security_module.replay import ReplayState, ReplayWindow

KEY = bytes(range(32))
TOPIC = "mi/gm-0001/sensor/sensor-1/data"
S, M = "sensor-1", "mother-unit"


def _pair(boot: int = 1) -> tuple[Sealer, Opener]:
    return Sealer(KEY, S, M, boot), Opener(KEY, S, M)


def test_roundtrip_over_json() -> None:
    sealer, opener = _pair()
    env = sealer.seal("measurement", TOPIC, b"vm=1.5")
    wire = env.model_dump_json()
    assert opener.open(SealedEnvelope.model_validate_json(wire), TOPIC) == b"vm=1.5"


def _parse_and_open(opener: Opener, wire: bytes) -> bytes:
    return opener.open(SealedEnvelope.model_validate_json(wire), TOPIC)


@st.composite
def wire_flips(draw: st.DrawFn) -> tuple[bytes, int]:
    payload = draw(st.binary(min_size=0, max_size=64))
    return payload, draw(st.integers(min_value=0))


@settings(max_examples=200, deadline=None)
@given(case=wire_flips())
def test_any_single_bit_flip_on_the_wire_is_rejected(case: tuple[bytes, int]) -> None:
    """After the original is accepted, no one-bit variant of its wire form is accepted."""
    payload, bit = case
    sealer, opener = _pair()
    wire = bytearray(sealer.seal("measurement", TOPIC, payload).model_dump_json().encode())
    assert opener.open(SealedEnvelope.model_validate_json(bytes(wire)), TOPIC) == payload
    i = bit % (len(wire) * 8)
    wire[i // 8] ^= 1 << (i % 8)
    with pytest.raises((ValidationError, ValueError, SecurityError)):
        _parse_and_open(opener, bytes(wire))


FIELDS = ["sender", "recipient", "msg_type", "boot", "seq", "ciphertext", "topic"]


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), bit=st.integers(0, 10_000))
def test_any_single_bit_flip_in_any_field_is_rejected(field: str, bit: int) -> None:
    """Field level, on a fresh opener (so a flip can't hide behind the replay check)."""
    sealer, opener = _pair()
    env = sealer.seal("measurement", TOPIC, b"p=101.3;T=288.1")
    values = env.model_dump()
    topic = TOPIC
    if field in ("boot", "seq"):
        width = 32 if field == "boot" else 64
        values[field] ^= 1 << (bit % width)
    elif field == "ciphertext":
        ct = bytearray(env.ciphertext)
        ct[(bit // 8) % len(ct)] ^= 1 << (bit % 8)
        values["ciphertext"] = bytes(ct)
    else:
        raw = bytearray((topic if field == "topic" else values[field]).encode())
        raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
        flipped = raw.decode("utf-8", errors="replace")
        if field == "topic":
            topic = flipped
        else:
            values[field] = flipped
    with pytest.raises(AuthenticationFailed):
        opener.open(SealedEnvelope.model_construct(**values), topic)


def test_every_replay_is_rejected() -> None:
    sealer, opener = _pair()
    envs = [sealer.seal("measurement", TOPIC, bytes([i])) for i in range(100)]
    for e in envs:
        opener.open(e, TOPIC)
    for e in envs:
        with pytest.raises(ReplayDetected):
            opener.open(e, TOPIC)


@settings(max_examples=50, deadline=None)
@given(order=st.permutations(list(range(64))))
def test_any_permutation_inside_the_window_is_accepted_once(order: list[int]) -> None:
    sealer, opener = _pair()
    envs = [sealer.seal("measurement", TOPIC, bytes([i])) for i in range(64)]
    for i in order:
        assert opener.open(envs[i], TOPIC) == bytes([i])
    for i in order:
        with pytest.raises(ReplayDetected):
            opener.open(envs[i], TOPIC)


def test_older_than_window_rejected_and_boot_rules() -> None:
    sealer, opener = _pair(boot=5)
    envs = [sealer.seal("m", TOPIC, b"x") for i in range(200)]
    opener.open(envs[150], TOPIC)
    with pytest.raises(ReplayDetected, match="older than the replay window"):
        opener.open(envs[50], TOPIC)  # never seen, but too old (T3)
    opener.open(envs[100], TOPIC)  # inside the window, first time: accepted
    new = Sealer(KEY, S, M, boot=6)
    opener.open(new.seal("m", TOPIC, b"y"), TOPIC)  # a new boot resets the window
    with pytest.raises(ReplayDetected, match="older boot"):
        opener.open(envs[199], TOPIC)


def test_wrong_topic_type_or_direction_rejected() -> None:
    sealer, opener = _pair()
    env = sealer.seal("measurement", TOPIC, b"x")
    with pytest.raises(AuthenticationFailed):
        opener.open(env, "mi/gm-0001/sensor/sensor-2/data")
    relabelled = SealedEnvelope.model_construct(**{**env.model_dump(), "msg_type": "status"})
    with pytest.raises(AuthenticationFailed):
        opener.open(relabelled, TOPIC)
    # The reverse direction has its own key: a reflected envelope does not open.
    reverse = Opener(KEY, M, S)
    reflected = SealedEnvelope.model_construct(**{**env.model_dump(), "sender": M,
                                                  "recipient": S})
    with pytest.raises(AuthenticationFailed):
        reverse.open(reflected, TOPIC)
    opener.open(env, TOPIC)  # the untouched original still opens


def test_restart_with_persisted_boot_counter_never_reuses_a_nonce(tmp_path: Path) -> None:
    counter_path = tmp_path / "sensor-1" / "boot_counter"
    seen: set[tuple[int, int]] = set()
    ciphertext_nonces: set[bytes] = set()
    opener = Opener(KEY, S, M)
    for _restart in range(5):
        boot = BootCounter(counter_path).next_boot()  # what a process does at start
        sealer = Sealer(KEY, S, M, boot)
        for _ in range(20):
            env = sealer.seal("m", TOPIC, b"same plaintext")
            assert (env.boot, env.seq) not in seen
            seen.add((env.boot, env.seq))
            ciphertext_nonces.add(env.ciphertext)
            opener.open(env, TOPIC)
    assert len(seen) == 100
    assert len(ciphertext_nonces) == 100  # same plaintext, never the same ciphertext
    assert BootCounter(counter_path).current() == 5
    assert oct(counter_path.stat().st_mode & 0o777) == "0o600"


def test_corrupt_boot_counter_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "boot_counter"
    p.write_text("garbage")
    with pytest.raises(StateFileError):
        BootCounter(p).next_boot()


def test_key_never_in_repr() -> None:
    key = os.urandom(32)
    sealer, opener = Sealer(key, S, M, 1), Opener(key, S, M)
    for text in (repr(sealer), str(sealer), repr(opener), str(opener)):
        assert key.hex() not in text
        assert repr(key) not in text


def test_replay_window_restore_after_restart() -> None:
    w = ReplayWindow(64, sender=S)
    for seq in range(10):
        w.accept(3, seq)
    restored = ReplayWindow.restore(w.state, 64, sender=S)
    assert restored.state == ReplayState(3, 9)
    with pytest.raises(ReplayDetected):
        restored.accept(3, 9)
    with pytest.raises(ReplayDetected):
        restored.accept(3, 2)
    restored.accept(3, 10)


def test_replay_window_minimum_size() -> None:
    with pytest.raises(ValueError, match="64"):
        ReplayWindow(32)


def test_authenticate_checks_the_tag_but_leaves_replay_to_the_caller() -> None:
    """Opener.authenticate (for receivers with exact gap bookkeeping) never moves the window."""
    sealer, opener = _pair()
    env = sealer.seal("measurement", TOPIC, b"x")
    assert opener.authenticate(env, TOPIC) == b"x"
    assert opener.authenticate(env, TOPIC) == b"x"  # the caller owns T3 here
    assert opener.replay_state == ReplayState(-1, -1)
    bad = SealedEnvelope.model_construct(**{**env.model_dump(), "seq": 1})
    with pytest.raises(AuthenticationFailed):
        opener.authenticate(bad, TOPIC)
    opener.open(env, TOPIC)
    with pytest.raises(ReplayDetected):
        opener.open(env, TOPIC)
