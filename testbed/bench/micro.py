"""Section 6, micro: the security module's operations next to the raw library rates.

``security_module.bench.run_micro`` times envelope seal/open, Ed25519 sign and
verify, Merkle append and inclusion proofs, and the raw ChaCha20-Poly1305 of the
same library on the same ciphertexts in the same run; this adds raw SHA-256 (the
Merkle append's work) so each wrapper stands next to what it wraps.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from security_module.bench import run_micro

# wrapper operation -> the raw operation it is compared with
PAIRS = {
    "envelope_seal": "raw_aead_encrypt",
    "envelope_open": "raw_aead_decrypt",
    "merkle_append": "raw_sha256_leaf",
}


def _raw_sha256(n: int) -> float:
    data = b"\x00" + bytes(32)
    sha = hashlib.sha256
    t0 = time.perf_counter()
    for _ in range(n):
        sha(data).digest()
    return n / (time.perf_counter() - t0)


def run_micro_section(*, quick: bool) -> dict[str, Any]:
    result = run_micro(quick)
    ops: dict[str, float] = result["ops_per_s"]
    ops["raw_sha256_leaf"] = max(_raw_sha256(20_000 if quick else 200_000) for _ in range(3))
    result["vs_raw"] = {op: ops[op] / ops[raw] for op, raw in PAIRS.items() if ops.get(raw)}
    return result
