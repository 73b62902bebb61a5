"""Merkle proofs over the stored leaves (RFC 9162), served to verifiers (L6).

The store computes proofs only as a service: it holds no key and decides
nothing. A proof is worth something only when the asker checks it against a
checkpoint signed by the mother unit (``security_module.merkle.verify_*``).
"""

from __future__ import annotations

from collections.abc import Iterable

from security_module.merkle import ConsistencyProof, InclusionProof, MerkleTree, leaf_hash


class ProofError(Exception):
    """A proof was asked for sizes or indices outside the stored tree."""


class LeafTree:
    """The stored leaves' Merkle tree, kept in step with the store (32 bytes per record)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._tree = MerkleTree(leaf_hash(leaf) for leaf in leaves)

    @property
    def size(self) -> int:
        return len(self._tree)

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self._tree.append(leaf)

    def root(self, size: int | None = None) -> bytes:
        try:
            return self._tree.root(size)
        except ValueError as e:
            raise ProofError(str(e)) from e

    def inclusion(self, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
        try:
            return self._tree.inclusion_proof(leaf_index, tree_size)
        except ValueError as e:
            raise ProofError(str(e)) from e

    def consistency(self, first_size: int, tree_size: int | None = None) -> ConsistencyProof:
        try:
            return self._tree.consistency_proof(first_size, tree_size)
        except ValueError as e:
            raise ProofError(str(e)) from e
