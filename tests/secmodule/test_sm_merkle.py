"""RFC 9162 Merkle trees: CT known answers, all proofs up to 64 leaves, bit flips."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_module.errors import InvalidProof
from security_module.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ConsistencyProof,
    InclusionProof,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency merkle_tree_test leaves and roots for sizes 0..8.
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

MAX = 64
BIG = MerkleTree.from_leaves(i.to_bytes(2, "big") for i in range(MAX))


def _reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 written recursively, as an independent oracle."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    left, right = _reference_mth(leaves[:k]), _reference_mth(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize("size", range(9))
def test_ct_known_roots(size: int) -> None:
    tree = MerkleTree.from_leaves(CT_LEAVES[:size])
    assert tree.root().hex() == CT_ROOTS[size]
    assert MerkleTree.from_leaves(CT_LEAVES).root(size).hex() == CT_ROOTS[size]
    cr = CompactRange()
    for d in CT_LEAVES[:size]:
        cr.append(d)
    assert cr.root().hex() == CT_ROOTS[size]


def test_empty_root() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]


def test_roots_match_recursive_oracle() -> None:
    leaves = [i.to_bytes(2, "big") for i in range(MAX)]
    for n in range(MAX + 1):
        assert BIG.root(n) == _reference_mth(leaves[:n])


def test_every_inclusion_proof_up_to_64_verifies() -> None:
    for n in range(1, MAX + 1):
        root = BIG.root(n)
        for m in range(n):
            verify_inclusion(BIG.inclusion_proof(m, n), BIG.leaf_hash_at(m), root, tree_size=n)


def test_every_consistency_proof_up_to_64_verifies() -> None:
    for n in range(MAX + 1):
        for m in range(n + 1):
            verify_consistency(BIG.consistency_proof(m, n), BIG.root(m), BIG.root(n),
                               first_size=m, second_size=n)


def _flip(b: bytes, bit: int) -> bytes:
    a = bytearray(b)
    a[bit // 8 % len(a)] ^= 1 << (bit % 8)
    return bytes(a)


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, MAX))
    return n, draw(st.integers(0, n - 1))


@settings(max_examples=300, deadline=None)
@given(case=inclusion_cases(), target=st.sampled_from(["hash", "root", "index", "size", "leaf"]),
       bit=st.integers(0, 255))
def test_inclusion_bit_flip_fails(case: tuple[int, int], target: str, bit: int) -> None:
    n, m = case
    proof = BIG.inclusion_proof(m, n)
    root, lh = BIG.root(n), BIG.leaf_hash_at(m)
    if target == "hash":
        if not proof.hashes:
            return  # size 1: the proof is empty, nothing to flip
        i = bit % len(proof.hashes)
        hashes = list(proof.hashes)
        hashes[i] = _flip(hashes[i], bit)
        proof = InclusionProof(leaf_index=m, tree_size=n, hashes=hashes)
    elif target == "root":
        root = _flip(root, bit)
    elif target == "leaf":
        lh = _flip(lh, bit)
    elif target == "index":
        proof = InclusionProof(leaf_index=m ^ (1 << (bit % 16)), tree_size=n, hashes=proof.hashes)
    else:
        proof = InclusionProof(leaf_index=m, tree_size=n ^ (1 << (bit % 16)), hashes=proof.hashes)
    with pytest.raises(InvalidProof):
        verify_inclusion(proof, lh, root, tree_size=n)


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(0, MAX))
    return draw(st.integers(0, n)), n


@settings(max_examples=300, deadline=None)
@given(case=consistency_cases(),
       target=st.sampled_from(["hash", "first_root", "second_root", "first", "second"]),
       bit=st.integers(0, 255))
def test_consistency_bit_flip_fails(case: tuple[int, int], target: str, bit: int) -> None:
    m, n = case
    if m == 0 and target == "second_root":
        return  # any tree extends the empty tree: that proof says nothing of the second root
    proof = BIG.consistency_proof(m, n)
    r1, r2 = BIG.root(m), BIG.root(n)
    if target == "hash":
        if not proof.hashes:
            return  # m == 0 or m == n: the proof is empty
        hashes = list(proof.hashes)
        i = bit % len(hashes)
        hashes[i] = _flip(hashes[i], bit)
        proof = ConsistencyProof(first_size=m, second_size=n, hashes=hashes)
    elif target == "first_root":
        r1 = _flip(r1, bit)
    elif target == "second_root":
        r2 = _flip(r2, bit)
    elif target == "first":
        proof = ConsistencyProof(first_size=m ^ (1 << (bit % 16)), second_size=n,
                                 hashes=proof.hashes)
    else:
        proof = ConsistencyProof(first_size=m, second_size=n ^ (1 << (bit % 16)),
                                 hashes=proof.hashes)
    with pytest.raises(InvalidProof):
        verify_consistency(proof, r1, r2, first_size=m, second_size=n)


def test_compact_range_matches_tree_and_serializes() -> None:
    cr = CompactRange()
    tree = MerkleTree()
    for i in range(300):
        d = i.to_bytes(4, "big")
        assert cr.append(d) == tree.append(d)
        assert cr.root() == tree.root()
        assert len(cr.hashes) == cr.size.bit_count()  # O(log n) state
    restored = CompactRange.from_dict(json.loads(json.dumps(cr.to_dict())))
    assert restored == cr
    restored.append(b"next")
    tree.append(b"next")
    assert restored.root() == tree.root()


def test_compact_range_rejects_inconsistent_state() -> None:
    with pytest.raises(ValueError, match="popcount"):
        CompactRange(3, [bytes(32)])


def test_large_tree_proofs() -> None:
    """100k leaves: build, root agrees with the compact range, proofs verify."""
    n = 100_000
    tree = MerkleTree(leaf_hash(i.to_bytes(4, "big")) for i in range(n))
    cr = CompactRange()
    for i in range(n):
        cr.append_hash(tree.leaf_hash_at(i))
    root = tree.root()
    assert cr.root() == root
    for m in (0, 1, 65_535, 65_536, n - 1):
        verify_inclusion(tree.inclusion_proof(m), tree.leaf_hash_at(m), root, tree_size=n)
    for first in (1, 4096, 65_536, 99_999):
        verify_consistency(tree.consistency_proof(first), tree.root(first), root,
                           first_size=first, second_size=n)


def test_proof_json_roundtrip() -> None:
    p = BIG.inclusion_proof(5, 20)
    q = InclusionProof.model_validate_json(p.model_dump_json())
    assert q == p
    verify_inclusion(q, BIG.leaf_hash_at(5), BIG.root(20), tree_size=20)


def test_rfc_path_alone_does_not_bind_size() -> None:
    """Why verify_inclusion takes the trusted size: leaf 0 has the same audit path in
    trees of 5 and 7 leaves, so only the size check refuses the relabelled proof."""
    p5 = BIG.inclusion_proof(0, 5)
    relabelled = InclusionProof(leaf_index=0, tree_size=7, hashes=p5.hashes)
    verify_inclusion(relabelled, BIG.leaf_hash_at(0), BIG.root(5), tree_size=7)  # RFC alone
    with pytest.raises(InvalidProof, match="another tree size"):
        verify_inclusion(relabelled, BIG.leaf_hash_at(0), BIG.root(5), tree_size=5)


def test_proof_hashes_are_raw_hashes_not_leaves() -> None:
    """Sibling hashes and the recomputation use the 0x00/0x01 prefixes (RFC 9162 §2.1.1)."""
    tree = MerkleTree.from_leaves([b"a", b"b"])
    p = tree.inclusion_proof(0)
    assert p.hashes == [leaf_hash(b"b")]
    expected = hashlib.sha256(b"\x01" + leaf_hash(b"a") + leaf_hash(b"b")).digest()
    assert tree.root() == expected
