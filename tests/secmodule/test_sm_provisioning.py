"""Provisioning, keys at rest (T5/L5, A_CRYPTO_RET), the type approval and the CLI."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from security_module.errors import (
    KeyFileError,
    ProvisioningError,
    SignatureInvalid,
    SoftwareIdMismatch,
)
from security_module.keystore import ENV_PASSPHRASE, load_private_key
from security_module.provisioning import Provisioned, provision
from security_module.software_id import SoftwareIdentifier, check_software_id, compute_software_id
from security_module.type_approval import convert_to_base
from testbed.commands import provision as provision_cmd


@pytest.fixture
def prov_dir(tmp_path: Path) -> Path:
    d = tmp_path / "p"
    provision(d, sensors=2)
    return d


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    provision_cmd.register(app)
    return app


def test_key_files_are_0600_and_encrypted(prov_dir: Path) -> None:
    keys = sorted(prov_dir.rglob("key.pem"))
    assert len(keys) == 3 + 7  # CA, NB, VA + mother, storage, processing, portal, 2 sensors, spare
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, k
        assert b"ENCRYPTED PRIVATE KEY" in k.read_bytes()
    assert stat.S_IMODE((prov_dir / "secrets" / "passphrase").stat().st_mode) == 0o600


def test_wrong_passphrase_is_a_clear_error(prov_dir: Path) -> None:
    path = prov_dir / "sensor-1" / "key.pem"
    with pytest.raises(KeyFileError, match="wrong passphrase") as exc:
        load_private_key(path, b"guess")
    assert str(path) in str(exc.value)


def test_group_readable_key_is_refused(prov_dir: Path) -> None:
    path = prov_dir / "sensor-1" / "key.pem"
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600") as exc:
        Provisioned(prov_dir).identity("sensor-1")
    assert exc.value.fields["mode"] == "0644"


def test_env_passphrase_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSPHRASE, "correct horse battery staple")
    summary = provision(tmp_path / "e")
    assert summary.passphrase_source == "env"
    assert not (tmp_path / "e" / "secrets" / "passphrase").exists()
    Provisioned(tmp_path / "e").identity("mother-unit")
    monkeypatch.delenv(ENV_PASSPHRASE)
    with pytest.raises(KeyFileError, match="no passphrase"):
        Provisioned(tmp_path / "e").identity("mother-unit")


def test_identity_and_material(prov_dir: Path) -> None:
    p = Provisioned(prov_dir)
    ident = p.identity("processing")
    assert (ident.device_id, ident.role) == ("processing", "remote_processing")
    assert "private_key" not in repr(ident)  # T5
    assert p.approved_sensor_ids == ["sensor-1", "sensor-2"]
    assert p.spare_sensor_ids == ["sensor-spare-1"]
    assert "sensor-spare-1" not in p.type_approval.approved_sensor_ids
    p.identity("sensor-spare-1")  # certified by the manufacturer all the same


def test_type_approval_verifies_and_detects_a_one_byte_edit(prov_dir: Path) -> None:
    ta = Provisioned(prov_dir).type_approval
    assert ta.parameters.base_pressure_kpa == 101.325
    assert ta.parameters.base_temperature_k == 288.15
    for kat in ta.known_answer_tests:
        vb = convert_to_base(kat.vm_m3, kat.pressure_kpa, kat.temperature_k, ta.parameters)
        assert kat.check(vb)
        assert not kat.check(vb * 1.001 + 1)
    path = prov_dir / "type_approval.json"
    raw = bytearray(path.read_bytes())
    i = raw.index(b"101.325") + 6
    raw[i] = ord("6")  # 101.325 -> 101.326 kPa: still valid JSON, different approval
    path.write_bytes(bytes(raw))
    with pytest.raises(SignatureInvalid, match="edited"):
        _ = Provisioned(prov_dir).type_approval


def test_fresh_provision_approves_the_current_code(prov_dir: Path) -> None:
    ta = Provisioned(prov_dir).type_approval
    for kind in ("mother_unit", "remote_processing", "remote_sensor"):
        check_software_id(ta, kind, compute_software_id(kind))
    fake = SoftwareIdentifier("0" * 64)
    with pytest.raises(SoftwareIdMismatch) as exc:
        check_software_id(ta, "remote_processing", fake)
    assert exc.value.fields["got"] == "0" * 64
    assert exc.value.fields["expected"] == ta.software_ids["remote_processing"]


def test_provision_refuses_to_overwrite(prov_dir: Path) -> None:
    with pytest.raises(ProvisioningError, match="--force"):
        provision(prov_dir)


def test_cli_refuses_without_force_and_replaces_with_force(tmp_path: Path) -> None:
    runner = CliRunner()
    d = tmp_path / "cli"
    first = runner.invoke(_cli(), ["provision", "--dir", str(d), "--sensors", "3"])
    assert first.exit_code == 0, first.output
    assert "sensor-3" in first.output
    assert "sw:" in first.output
    old_ca = (d / "manufacturer-ca" / "ca.crt").read_bytes()
    again = runner.invoke(_cli(), ["provision", "--dir", str(d)])
    assert again.exit_code == 1
    assert "--force" in again.output
    assert "already holds provisioned material" in again.output
    assert (d / "manufacturer-ca" / "ca.crt").read_bytes() == old_ca
    forced = runner.invoke(_cli(), ["provision", "--dir", str(d), "--force",
                                    "--instrument", "gm-0002"])
    assert forced.exit_code == 0, forced.output
    assert (d / "manufacturer-ca" / "ca.crt").read_bytes() != old_ca
    assert Provisioned(d).instrument_id == "gm-0002"
    assert not (d / "sensor-3").exists()  # old devices are gone with --force


def test_public_keys_by_role_are_the_certified_keys_of_exactly_that_role(prov_dir: Path) -> None:
    material = Provisioned(prov_dir)
    sensors = material.public_keys("remote_sensor")
    assert sorted(sensors) == ["sensor-1", "sensor-2", "sensor-spare-1"]
    assert list(material.public_keys("remote_storage")) == ["storage"]
    assert material.public_keys("no-such-role") == {}
    assert sensors["sensor-1"].public_bytes_raw() == material.public_key(
        "sensor-1").public_bytes_raw()
