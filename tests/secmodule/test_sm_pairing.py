"""The pairing ceremony (P8/U8, WELMEC 7.3 §4.1), told as short stories."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from security_module.errors import (
    AuthenticationFailed,
    AuthorizationError,
    CertificateInvalid,
    KeyFileError,
    NotPaired,
    PairingFailed,
    SignatureInvalid,
)
from security_module.pairing import (
    MotherUnitPairing,
    PairingAuthorization,
    PairingConfirm,
    PairingHello,
    PairingResponse,
    PairingState,
    SensorPairing,
    comparison_code,
    issue_authorization,
    transcript_hash,
)
from security_module.pairing_store import PairingStore
from security_module.primitives import x25519_public_bytes
from security_module.provisioning import Provisioned, provision


@pytest.fixture(scope="module")
def prov(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    d = tmp_path_factory.mktemp("prov")
    provision(d, sensors=2)
    return Provisioned(d)


@pytest.fixture(scope="module")
def other_prov(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    """Another manufacturer: same device names, another CA."""
    d = tmp_path_factory.mktemp("other")
    provision(d, sensors=1)
    return Provisioned(d)


def _mu(prov: Provisioned, auth: PairingAuthorization | None, *,
        used: frozenset[str] = frozenset(), now: dt.datetime | None = None,
        approved: list[str] | None = None) -> MotherUnitPairing:
    return MotherUnitPairing(
        prov.identity("mother-unit"), instrument_id=prov.instrument_id,
        va_public_key=prov.verification_authority_public_key, authorization=auth,
        used_authorizations=used, approved_sensor_ids=approved,
        now=(lambda: now) if now else (lambda: dt.datetime.now(dt.UTC)),
    )


def _sensor(prov: Provisioned, name: str = "sensor-1") -> SensorPairing:
    return SensorPairing(prov.identity(name), instrument_id=prov.instrument_id)


def _run(mu: MotherUnitPairing, sensor: SensorPairing) -> None:
    hello = PairingHello.model_validate_json(sensor.start().model_dump_json())
    resp = PairingResponse.model_validate_json(mu.receive_hello(hello).model_dump_json())
    confirm = PairingConfirm.model_validate_json(sensor.receive_response(resp).model_dump_json())
    mu.receive_confirm(confirm)


def test_happy_path_same_key_and_code_persisted(prov: Provisioned, tmp_path: Path) -> None:
    auth = prov.issue_pairing_authorization("sensor-1")
    mu, sensor = _mu(prov, auth), _sensor(prov)
    _run(mu, sensor)
    assert mu.state is sensor.state is PairingState.DONE
    assert mu.record is not None
    assert sensor.record is not None
    assert mu.record.key == sensor.record.key
    assert len(mu.record.key) == 32
    assert mu.record.key_id == sensor.record.key_id
    assert mu.comparison_code == sensor.comparison_code
    assert mu.comparison_code is not None
    assert len(mu.comparison_code) == 6
    assert mu.record.peer_id == "sensor-1"
    assert sensor.record.peer_id == "mother-unit"
    # T5: the key is never in repr/str.
    for text in (repr(mu.record), str(mu.record), f"{mu.record}"):
        assert mu.record.key.hex() not in text
        assert repr(mu.record.key) not in text
    store = PairingStore(tmp_path, prov.passphrase)
    store.save(mu.record, authorization_id=mu.authorization_id)
    assert oct((tmp_path / "pairings.json").stat().st_mode & 0o777) == "0o600"
    assert mu.record.key.hex() not in (tmp_path / "pairings.json").read_text()
    reopened = PairingStore(tmp_path, prov.passphrase)
    assert reopened.get("sensor-1").key == mu.record.key
    assert reopened.is_authorization_used(auth.token_id)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        PairingStore(tmp_path, b"not the passphrase").get("sensor-1")
    assert reopened.unpair("sensor-1")
    assert "sealed_key" not in (tmp_path / "pairings.json").read_text()
    with pytest.raises(NotPaired):
        PairingStore(tmp_path, prov.passphrase).get("sensor-1")


def test_sensor_from_another_ca_is_refused(prov: Provisioned, other_prov: Provisioned) -> None:
    auth = prov.issue_pairing_authorization("sensor-1")
    mu = _mu(prov, auth)
    foreign = SensorPairing(other_prov.identity("sensor-1"), instrument_id=prov.instrument_id)
    with pytest.raises(CertificateInvalid, match="manufacturer CA"):
        mu.receive_hello(foreign.start())
    assert mu.state is PairingState.FAILED


def test_no_authorization_no_pairing(prov: Provisioned) -> None:
    with pytest.raises(AuthorizationError, match="no pairing authorization"):
        _mu(prov, None).receive_hello(_sensor(prov).start())


def test_expired_authorization(prov: Provisioned) -> None:
    """Officer opens a 10-minute window at 09:00; the sensor says hello at 09:11."""
    t0 = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)
    auth = issue_authorization(prov.verification_authority_key(), instrument_id=prov.instrument_id,
                               sensor_id="sensor-1", ttl=dt.timedelta(minutes=10), now=t0)
    late = _mu(prov, auth, now=t0 + dt.timedelta(minutes=11))
    with pytest.raises(AuthorizationError, match="expired"):
        late.receive_hello(_sensor(prov).start())


def test_reused_authorization(prov: Provisioned, tmp_path: Path) -> None:
    auth = prov.issue_pairing_authorization("sensor-1")
    store = PairingStore(tmp_path, prov.passphrase)
    mu = _mu(prov, auth, used=store.used_authorizations())
    _run(mu, _sensor(prov))
    assert mu.record is not None
    store.save(mu.record, authorization_id=mu.authorization_id)
    again = _mu(prov, auth, used=PairingStore(tmp_path, prov.passphrase).used_authorizations())
    with pytest.raises(AuthorizationError, match="already used"):
        again.receive_hello(_sensor(prov).start())
    with pytest.raises(AuthorizationError, match="already used"):  # the store refuses too
        store.save(mu.record, authorization_id=auth.token_id)


def test_authorization_bad_signature_or_other_sensor(prov: Provisioned) -> None:
    forged = issue_authorization(prov.notified_body_key(), instrument_id=prov.instrument_id,
                                 sensor_id="sensor-1")  # signed by the wrong authority
    with pytest.raises(AuthorizationError, match="bad signature"):
        _mu(prov, forged).receive_hello(_sensor(prov).start())
    for_sensor_2 = prov.issue_pairing_authorization("sensor-2")
    with pytest.raises(AuthorizationError, match="another sensor"):
        _mu(prov, for_sensor_2).receive_hello(_sensor(prov).start())


def test_similar_unit_not_approved(prov: Provisioned) -> None:
    """The spare is manufacturer-certified but not in the type approval's list."""
    auth = prov.issue_pairing_authorization("sensor-spare-1")
    mu = _mu(prov, auth, approved=prov.type_approval.approved_sensor_ids)
    with pytest.raises(PairingFailed, match="not approved"):
        mu.receive_hello(_sensor(prov, "sensor-spare-1").start())


def test_tampered_confirmations(prov: Provisioned) -> None:
    mu, sensor = _mu(prov, prov.issue_pairing_authorization("sensor-1")), _sensor(prov)
    resp = mu.receive_hello(sensor.start())
    bad = resp.model_copy(update={"confirmation": bytes([resp.confirmation[0] ^ 1])
                                  + resp.confirmation[1:]})
    with pytest.raises(AuthenticationFailed, match="mother unit key confirmation"):
        sensor.receive_response(bad)

    mu, sensor = _mu(prov, prov.issue_pairing_authorization("sensor-1")), _sensor(prov)
    confirm = sensor.receive_response(mu.receive_hello(sensor.start()))
    bad_c = confirm.model_copy(update={"confirmation": confirm.confirmation[:-1]
                                       + bytes([confirm.confirmation[-1] ^ 0x80])})
    with pytest.raises(AuthenticationFailed, match="sensor key confirmation"):
        mu.receive_confirm(bad_c)
    assert mu.record is None
    assert mu.state is PairingState.FAILED


def test_man_in_the_middle_substituting_ephemeral_keys(prov: Provisioned) -> None:
    """Mallory relays the ceremony and swaps both X25519 keys for her own."""
    mallory = x25519_public_bytes(X25519PrivateKey.generate())
    mu, sensor = _mu(prov, prov.issue_pairing_authorization("sensor-1")), _sensor(prov)
    hello = sensor.start()
    forged_hello = hello.model_copy(update={"ephemeral_public": mallory})
    with pytest.raises(SignatureInvalid):
        mu.receive_hello(forged_hello)

    mu2 = _mu(prov, prov.issue_pairing_authorization("sensor-1"))
    sensor2 = _sensor(prov)
    hello2 = sensor2.start()
    resp = mu2.receive_hello(hello2)
    forged_resp = resp.model_copy(update={"ephemeral_public": mallory})
    with pytest.raises(SignatureInvalid):
        sensor2.receive_response(forged_resp)

    # Even an operator comparing codes would notice: the two views differ.
    code_sensor_view = comparison_code(transcript_hash(hello2, forged_resp))
    code_mu_view = comparison_code(transcript_hash(hello2, resp))
    forged_h2 = hello2.model_copy(update={"ephemeral_public": mallory})
    assert code_sensor_view != code_mu_view
    assert comparison_code(transcript_hash(forged_h2, resp)) != code_mu_view


def test_similar_unit_impersonating_the_paired_sensor(prov: Provisioned) -> None:
    """The spare claims to be sensor-1 but carries its own certificate."""
    auth = prov.issue_pairing_authorization("sensor-1")
    spare = _sensor(prov, "sensor-spare-1")
    hello = spare.start().model_copy(update={"device_id": "sensor-1"})
    with pytest.raises(CertificateInvalid, match="another device"):
        _mu(prov, auth).receive_hello(hello)


def test_out_of_order_messages(prov: Provisioned) -> None:
    sensor = _sensor(prov)
    sensor.start()
    with pytest.raises(PairingFailed, match="out of order"):
        sensor.start()
