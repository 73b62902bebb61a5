"""Micro benchmarks of the security module (for ``testbed bench --micro``).

``run_micro(quick)`` returns ops/s per operation and the ratio of envelope open to
raw AEAD decrypt measured in the same run (issue 3: must be >= 0.5). Not a test: no
assertion on time is made anywhere.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import cryptography
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from security_module.envelope import Opener, SealedEnvelope, Sealer, direction_key
from security_module.merkle import MerkleTree, verify_inclusion

__all__ = ["run_micro"]

PAYLOAD_SIZE = 200
TOPIC = "mi/gm-0001/sensor/sensor-1/data"


def _rate(fn: Callable[[int], None], n: int, repeat: int) -> float:
    """Best-of-``repeat`` ops/s of ``fn(n)`` doing ``n`` operations."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best if best > 0 else float("inf")


def run_micro(quick: bool = False) -> dict[str, Any]:  # noqa: PLR0915 - one flat script
    """Measure ops/s; ``quick`` uses fewer iterations (seconds → a fraction of one)."""
    n_aead = 5_000 if quick else 50_000
    n_sig = 300 if quick else 3_000
    n_merkle = 5_000 if quick else 100_000
    n_proof = 500 if quick else 5_000
    repeat = 3 if quick else 5

    key = os.urandom(32)
    pt = os.urandom(PAYLOAD_SIZE)
    sealer = Sealer(key, "sensor-1", "mother-unit", boot=1)
    batches: list[list[SealedEnvelope]] = []

    def seal(n: int) -> None:
        s = sealer.seal
        batches.append([s("measurement", TOPIC, pt) for _ in range(n)])

    seal_rate = _rate(seal, n_aead, repeat)

    def open_(n: int) -> None:
        # A fresh opener per run: every envelope is new to its replay window.
        o = Opener(key, "sensor-1", "mother-unit").open
        for env in batches[-1][:n]:
            o(env, TOPIC)

    def open_runs(n: int) -> None:
        open_(n)

    # Raw AEAD doing exactly the crypto work of the envelopes: same key, the same
    # ciphertexts, nonces and associated data, precomputed; only the envelope layer
    # (label checks, AD lookup, nonce packing, replay window) is left out.
    aead = ChaCha20Poly1305(direction_key(key, "sensor-1", "mother-unit"))
    probe = Opener(key, "sensor-1", "mother-unit")
    work = []
    for env in batches[-1]:
        nonce = env.boot.to_bytes(4, "big") + env.seq.to_bytes(8, "big")
        work.append((nonce, env.ciphertext, probe._ad_prefix(env.msg_type, TOPIC)))
    sample = batches[-1][0]

    def raw_encrypt(n: int) -> None:
        enc = aead.encrypt
        for nonce, _ct, ad in work[:n]:
            enc(nonce, pt, ad)

    def raw_decrypt(n: int) -> None:
        dec = aead.decrypt
        for nonce, ct, ad in work[:n]:
            dec(nonce, ct, ad)

    # Interleave open and raw decrypt so both see the same machine conditions.
    open_rate = raw_dec_rate = 0.0
    for _ in range(repeat):
        open_rate = max(open_rate, _rate(open_runs, n_aead, 1))
        raw_dec_rate = max(raw_dec_rate, _rate(raw_decrypt, n_aead, 1))
    raw_enc_rate = _rate(raw_encrypt, n_aead, repeat)
    assert sample.ciphertext  # the batch is real

    sk = Ed25519PrivateKey.generate()
    pk = sk.public_key()
    msg = os.urandom(PAYLOAD_SIZE)
    sig = sk.sign(msg)

    def ed_sign(n: int) -> None:
        for _ in range(n):
            sk.sign(msg)

    def ed_verify(n: int) -> None:
        for _ in range(n):
            pk.verify(sig, msg)

    leaves = [i.to_bytes(8, "big") * 4 for i in range(n_merkle)]
    trees: list[MerkleTree] = []

    def merkle_append(n: int) -> None:
        t = MerkleTree()
        for d in leaves[:n]:
            t.append(d)
        trees.append(t)

    append_rate = _rate(merkle_append, n_merkle, repeat)
    tree = trees[-1]
    root = tree.root()
    size = len(tree)

    def proof_gen_verify(n: int) -> None:
        step = max(1, size // n)
        for i in range(0, step * n, step):
            idx = i % size
            verify_inclusion(tree.inclusion_proof(idx), tree.leaf_hash_at(idx), root,
                             tree_size=size)

    t0 = time.perf_counter()
    root_build = MerkleTree.from_leaves(leaves).root()
    build_s = time.perf_counter() - t0
    assert root_build == root

    return {
        "quick": quick,
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "aead": "ChaCha20-Poly1305",
        "payload_bytes": PAYLOAD_SIZE,
        "ops_per_s": {
            "envelope_seal": seal_rate,
            "envelope_open": open_rate,
            "raw_aead_encrypt": raw_enc_rate,
            "raw_aead_decrypt": raw_dec_rate,
            "ed25519_sign": _rate(ed_sign, n_sig, repeat),
            "ed25519_verify": _rate(ed_verify, n_sig, repeat),
            "merkle_append": append_rate,
            "merkle_inclusion_proof_and_verify": _rate(proof_gen_verify, n_proof, repeat),
        },
        "merkle_tree_size": size,
        "merkle_build_root_s": build_s,
        "envelope_open_vs_raw_decrypt": open_rate / raw_dec_rate if raw_dec_rate else 0.0,
    }
