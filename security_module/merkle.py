"""RFC 9162 Merkle trees: hashing, proofs, verification, a compact right edge.

* ``leaf_hash(d) = SHA-256(0x00 ‖ d)``, ``node_hash(l, r) = SHA-256(0x01 ‖ l ‖ r)``
  (RFC 9162 §2.1.1); the root of the empty tree is SHA-256 of the empty string.
* :class:`MerkleTree` keeps every level of complete subtrees in flat ``bytearray``s
  (32 bytes per hash), so appending is amortized O(1) hashes and a proof needs only
  O(log n) cached hashes plus O(log² n) hashes for the incomplete right edge.
* :class:`CompactRange` is the right edge only - O(log n) hashes - which is all the
  mother unit keeps of the stored-records log (4.2); it serializes to JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from security_module.errors import InvalidProof

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "ConsistencyProof",
    "InclusionProof",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_of_leaves",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d}) = SHA-256(0x00 ‖ d)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 ‖ MTH(left) ‖ MTH(right))."""
    return _sha256(b"\x01" + left + right).digest()


def _largest_pow2_below(n: int) -> int:
    """The largest power of two k with k < n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class _Proof(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")


class InclusionProof(_Proof):
    """Audit path of leaf ``leaf_index`` in the tree of ``tree_size`` leaves."""

    leaf_index: int = Field(ge=0)
    tree_size: int = Field(ge=0)
    hashes: list[bytes]


class ConsistencyProof(_Proof):
    """Proof that the tree of ``first_size`` is a prefix of the tree of ``second_size``."""

    first_size: int = Field(ge=0)
    second_size: int = Field(ge=0)
    hashes: list[bytes]


class MerkleTree:
    """An append-only in-memory Merkle tree with cached levels."""

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        # _levels[k] holds the roots of the complete, aligned subtrees of 2**k leaves.
        self._levels: list[bytearray] = [bytearray()]
        self.extend_hashes(leaf_hashes)

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        return cls(leaf_hash(d) for d in leaves)

    def __len__(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    @property
    def size(self) -> int:
        return len(self)

    def append(self, data: bytes) -> int:
        """Append a leaf's data; returns its index."""
        return self.append_hash(_sha256(b"\x00" + data).digest())

    def append_hash(self, lh: bytes) -> int:
        if len(lh) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        levels = self._levels
        index = len(levels[0]) // HASH_SIZE
        levels[0] += lh
        # Every complete pair on the right edge produces a parent (amortized O(1)).
        n, level, h = index + 1, 0, lh
        while n % 2 == 0:
            buf = levels[level]
            left = bytes(buf[-2 * HASH_SIZE:-HASH_SIZE])
            h = _sha256(b"\x01" + left + h).digest()
            level += 1
            n //= 2
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += h
        return index

    def extend(self, leaves: Iterable[bytes]) -> None:
        for d in leaves:
            self.append(d)

    def extend_hashes(self, leaf_hashes: Iterable[bytes]) -> None:
        for lh in leaf_hashes:
            self.append_hash(lh)

    def leaf_hash_at(self, index: int) -> bytes:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return bytes(self._levels[0][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def _subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]); ``lo`` is aligned to the largest power of two <= hi - lo."""
        n = hi - lo
        if n & (n - 1) == 0:  # complete subtree: cached
            level = n.bit_length() - 1
            i = lo >> level
            return bytes(self._levels[level][i * HASH_SIZE:(i + 1) * HASH_SIZE])
        k = _largest_pow2_below(n)
        return node_hash(self._subtree(lo, lo + k), self._subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all) - RFC 9162 §2.1.1."""
        n = len(self) if size is None else size
        if not 0 <= n <= len(self):
            raise ValueError(f"tree size {n} out of range 0..{len(self)}")
        if n == 0:
            return EMPTY_ROOT
        return self._subtree(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """RFC 9162 §2.1.3.1 PATH(m, D[0:n])."""
        n = len(self) if size is None else size
        if not 0 <= index < n <= len(self):
            raise ValueError(f"no leaf {index} in a tree of size {n}")
        path: list[bytes] = []
        lo, hi, m = 0, n, index
        # Iterative form of PATH: descend, collecting siblings from the root down.
        while hi - lo > 1:
            k = _largest_pow2_below(hi - lo)
            if m < k:
                path.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._subtree(lo, lo + k))
                lo, m = lo + k, m - k
        path.reverse()  # the proof lists siblings from the leaf up
        return InclusionProof(leaf_index=index, tree_size=n, hashes=path)

    def consistency_proof(self, first: int, second: int | None = None) -> ConsistencyProof:
        """RFC 9162 §2.1.4.1 PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true)."""
        n = len(self) if second is None else second
        if not 0 <= first <= n <= len(self):
            raise ValueError(f"no consistency proof from {first} to {n}")
        proof: list[bytes] = []
        if 0 < first < n:
            lo, hi, m, complete = 0, n, first, True
            while m != hi - lo:
                k = _largest_pow2_below(hi - lo)
                if m <= k:
                    proof.append(self._subtree(lo + k, hi))
                    hi = lo + k
                else:
                    proof.append(self._subtree(lo, lo + k))
                    lo, m, complete = lo + k, m - k, False
            if not complete:
                proof.append(self._subtree(lo, hi))
            proof.reverse()
        return ConsistencyProof(first_size=first, second_size=n, hashes=proof)


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH of the given leaf data (convenience for tests and verifiers)."""
    return MerkleTree.from_leaves(leaves).root()


def verify_inclusion(
    proof: InclusionProof, leaf_hash_value: bytes, root: bytes, *, tree_size: int
) -> None:
    """RFC 9162 §2.1.3.2; raises :class:`InvalidProof`.

    ``root`` and ``tree_size`` are the trusted pair (from a verified checkpoint). The
    size must be given: the RFC algorithm alone does not bind it for every leaf (the
    path of leaf 0 is the same in trees of 5 and 7 leaves), so a proof claiming another
    size than the trusted root's is refused here.
    """
    fn, sn = proof.leaf_index, proof.tree_size - 1
    fields = {"leaf_index": proof.leaf_index, "tree_size": proof.tree_size}
    if proof.tree_size != tree_size:
        raise InvalidProof("proof is for another tree size", expected=tree_size, **fields)
    if proof.leaf_index >= proof.tree_size:
        raise InvalidProof("leaf index is not inside the tree", **fields)
    r = leaf_hash_value
    for p in proof.hashes:
        if len(p) != HASH_SIZE:
            raise InvalidProof("proof hash has the wrong length", **fields)
        if sn == 0:
            raise InvalidProof("inclusion proof is too long", **fields)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("inclusion proof is too short", **fields)
    if r != root:
        raise InvalidProof("inclusion proof does not lead to the root", **fields)


def verify_consistency(  # noqa: PLR0912 - RFC 9162 §2.1.4.2 step by step
    proof: ConsistencyProof,
    first_root: bytes,
    second_root: bytes,
    *,
    first_size: int,
    second_size: int,
) -> None:
    """RFC 9162 §2.1.4.2; raises :class:`InvalidProof`.

    The roots come with their trusted sizes (two verified checkpoints); a proof for
    other sizes is refused. Edge cases outside the RFC's 0 < first < second: equal
    sizes need an empty proof and equal roots; first == 0 needs an empty proof and the
    empty-tree root (any tree extends the empty tree, so nothing is said about the
    second root).
    """
    first, second = proof.first_size, proof.second_size
    fields = {"first_size": first, "second_size": second}
    if (first, second) != (first_size, second_size):
        raise InvalidProof("proof is for other tree sizes",
                           expected=[first_size, second_size], **fields)
    path = list(proof.hashes)
    if any(len(p) != HASH_SIZE for p in path):
        raise InvalidProof("proof hash has the wrong length", **fields)
    if first > second:
        raise InvalidProof("first tree is larger than the second", **fields)
    if first == second:
        if path or first_root != second_root:
            raise InvalidProof("equal sizes need an empty proof and equal roots", **fields)
        return
    if first == 0:
        if path or first_root != EMPTY_ROOT:
            raise InvalidProof("the empty tree is consistent only with an empty proof",
                               **fields)
        return
    if not path:  # step 1
        raise InvalidProof("consistency proof is empty", **fields)
    if first & (first - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise InvalidProof("consistency proof is too long", **fields)
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # step 7
    if sn != 0:
        raise InvalidProof("consistency proof is too short", **fields)
    if fr != first_root:
        raise InvalidProof("consistency proof does not lead to the first root", **fields)
    if sr != second_root:
        raise InvalidProof("consistency proof does not lead to the second root", **fields)


class CompactRange:
    """The right edge of a Merkle tree: one hash per set bit of the size (O(log n)).

    Appending and taking the root need nothing else; ``to_dict``/``from_dict`` persist it.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError("a compact range of size n holds popcount(n) hashes")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError("hashes are 32 bytes")
        self._size = size
        self._hashes = list(hashes)  # left to right, largest subtree first

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        return list(self._hashes)

    def append(self, data: bytes) -> int:
        return self.append_hash(leaf_hash(data))

    def append_hash(self, lh: bytes) -> int:
        index = self._size
        h = lh
        n = index
        # Merge with equal-sized subtrees on the right edge (one per trailing 1-bit).
        while n & 1:
            h = node_hash(self._hashes.pop(), h)
            n >>= 1
        self._hashes.append(h)
        self._size = index + 1
        return index

    def root(self) -> bytes:
        if self._size == 0:
            return EMPTY_ROOT
        it = reversed(self._hashes)
        r = next(it)
        for h in it:
            r = node_hash(h, r)
        return r

    def to_dict(self) -> dict[str, Any]:
        return {"size": self._size, "hashes": [h.hex() for h in self._hashes]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompactRange:
        return cls(int(d["size"]), [bytes.fromhex(h) for h in d["hashes"]])

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CompactRange) and other._size == self._size
                and other._hashes == self._hashes)

    def __hash__(self) -> int:
        return hash((self._size, tuple(self._hashes)))

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}...)"
