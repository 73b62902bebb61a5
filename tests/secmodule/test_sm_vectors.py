"""Known-answer tests for the primitives the security module assembles."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from security_module.errors import SignatureInvalid
from security_module.primitives import (
    ed25519_private_from_seed,
    ed25519_public_bytes,
    ed25519_sign,
    ed25519_verify,
    hkdf_sha256,
    x25519_exchange,
)

# RFC 8032 §7.1 TEST 1 and TEST 2: (secret key, public key, message, signature)
RFC8032 = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="rfc8032-test1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="rfc8032-test2",
    ),
]


@pytest.mark.parametrize(("sk", "pk", "msg", "sig"), RFC8032)
def test_ed25519_rfc8032(sk: str, pk: str, msg: str, sig: str) -> None:
    key = ed25519_private_from_seed(bytes.fromhex(sk))
    assert ed25519_public_bytes(key).hex() == pk
    assert ed25519_sign(key, bytes.fromhex(msg)).hex() == sig
    ed25519_verify(key.public_key(), bytes.fromhex(msg), bytes.fromhex(sig))
    with pytest.raises(SignatureInvalid):
        ed25519_verify(key.public_key(), bytes.fromhex(msg) + b"\x00", bytes.fromhex(sig))


# RFC 7748 §5.2: the two single-iteration X25519 vectors (scalar, u, output u)
RFC7748 = [
    pytest.param(
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        id="rfc7748-vector1",
    ),
    pytest.param(
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        id="rfc7748-vector2",
    ),
]


@pytest.mark.parametrize(("scalar", "u", "out"), RFC7748)
def test_x25519_rfc7748(scalar: str, u: str, out: str) -> None:
    key = X25519PrivateKey.from_private_bytes(bytes.fromhex(scalar))
    assert x25519_exchange(key, bytes.fromhex(u)).hex() == out


def test_hkdf_rfc5869_case1() -> None:
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        "34007208d5b887185865"
    )
