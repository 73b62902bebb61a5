"""``provision``: the testbed plays manufacturer, notified body and verification officer.

Writes (layout documented in docs/security_module.md)::

    DIR/manifest.json                      what was provisioned (no secrets)
    DIR/secrets/passphrase                 random key passphrase, 0600 (unless env given)
    DIR/manufacturer-ca/{ca.crt,key.pem}   Ed25519 CA
    DIR/notified-body/{key.pem,public.pem} signs the type approval
    DIR/verification-authority/{key.pem,public.pem}  signs pairing authorizations
    DIR/type_approval.json                 SignedTypeApproval
    DIR/<device>/{key.pem,cert.pem}        one per device; the dir is its data dir

``Provisioned(dir)`` is the loader every component uses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from security_module.boot_counter import BootCounter
from security_module.checkpoint import NoteSigner, NoteVerifier
from security_module.errors import CertificateInvalid, KeyFileError, ProvisioningError
from security_module.identity import (
    DeviceIdentity,
    certificate_pem,
    issue_device_certificate,
    make_ca,
    verify_device_certificate,
)
from security_module.keystore import (
    generate_passphrase_file,
    load_private_key,
    passphrase_source,
    resolve_passphrase,
    write_private_key,
)
from security_module.logbook import Logbook
from security_module.pairing import PairingAuthorization, issue_authorization
from security_module.pairing_store import PairingStore
from security_module.primitives import ed25519_public_bytes
from security_module.software_id import LEGALLY_RELEVANT_KINDS, compute_software_id
from security_module.type_approval import (
    GasMeterParameters,
    TypeApproval,
    default_known_answer_tests,
    load_type_approval,
    sign_type_approval,
)

__all__ = [
    "MOTHER_UNIT",
    "PORTAL",
    "PROCESSING",
    "STORAGE",
    "ProvisionSummary",
    "Provisioned",
    "provision",
    "role_of",
]

MOTHER_UNIT = "mother-unit"
STORAGE = "storage"
PROCESSING = "processing"
# WELMEC 7.3 §4.3: the remote portal (legally non-relevant software). Its key signs
# only the non-relevant commands of the protective interface (S), nothing else.
PORTAL = "portal"
CA_DIR = "manufacturer-ca"
NB_DIR = "notified-body"
VA_DIR = "verification-authority"
SECRETS_DIR = "secrets"
MANIFEST = "manifest.json"
TYPE_APPROVAL = "type_approval.json"
KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
PUBLIC_FILE = "public.pem"


def role_of(device: str) -> str:
    """Component kind (certificate OU) of a device name."""
    if device == MOTHER_UNIT:
        return "mother_unit"
    if device == STORAGE:
        return "remote_storage"
    if device == PROCESSING:
        return "remote_processing"
    if device == PORTAL:
        return "remote_portal"
    if device.startswith("sensor-"):
        return "remote_sensor"
    raise ValueError(f"unknown device name {device!r}")


@dataclass(frozen=True)
class ProvisionSummary:
    directory: Path
    instrument_id: str
    devices: dict[str, str]  # name -> role
    approved_sensor_ids: list[str]
    spare_sensor_ids: list[str]
    software_ids: dict[str, list[str]]
    passphrase_source: str
    files: list[Path] = field(default_factory=list)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _existing_material(root: Path) -> list[Path]:
    names = [MANIFEST, TYPE_APPROVAL, SECRETS_DIR, CA_DIR, NB_DIR, VA_DIR, MOTHER_UNIT]
    return [root / n for n in names if (root / n).exists()]


def _wipe(root: Path) -> None:
    """--force: remove only what provision creates (old manifest's devices included)."""
    devices: list[str] = [MOTHER_UNIT, STORAGE, PROCESSING, PORTAL]
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        devices += list(json.loads((root / MANIFEST).read_text())["devices"])
    for name in {*devices, SECRETS_DIR, CA_DIR, NB_DIR, VA_DIR}:
        p = root / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
    for name in (MANIFEST, TYPE_APPROVAL):
        (root / name).unlink(missing_ok=True)


def provision(
    directory: Path | str,
    *,
    instrument_id: str = "gm-0001",
    sensors: int = 1,
    spare_sensors: int = 1,
    force: bool = False,
    software_ids: Mapping[str, list[str]] | None = None,
    parameters: GasMeterParameters | None = None,
) -> ProvisionSummary:
    """Create all key material and the signed type approval under ``directory``.

    ``software_ids`` defaults to the identifiers of the installed code (P2/U2), so a
    fresh provision approves the current code. Refuses to overwrite without ``force``.
    """
    root = Path(directory)
    if sensors < 1:
        raise ProvisioningError("at least one sensor is required", sensors=sensors)
    existing = _existing_material(root)
    if existing and not force:
        raise ProvisioningError(
            f"{root} already holds provisioned material ({existing[0].name}); "
            "use --force to replace it (this discards all pairings and the logbook)",
            path=str(root),
        )
    root.mkdir(parents=True, exist_ok=True)
    if existing:
        _wipe(root)
    files: list[Path] = []

    source = passphrase_source(root)
    if source == "dir-file":
        files.append(generate_passphrase_file(root))
    passphrase = resolve_passphrase(root)

    # Manufacturer CA.
    ca_key = Ed25519PrivateKey.generate()
    ca_cert = make_ca(ca_key)
    write_private_key(root / CA_DIR / KEY_FILE, ca_key, passphrase)
    _write_public(root / CA_DIR / "ca.crt", certificate_pem(ca_cert).encode())
    files += [root / CA_DIR / KEY_FILE, root / CA_DIR / "ca.crt"]

    # Notified body and verification authority (officer) keys.
    authority_keys: dict[str, Ed25519PrivateKey] = {}
    for sub in (NB_DIR, VA_DIR):
        key = Ed25519PrivateKey.generate()
        authority_keys[sub] = key
        write_private_key(root / sub / KEY_FILE, key, passphrase)
        _write_public(root / sub / PUBLIC_FILE, _public_pem(key.public_key()))
        files += [root / sub / KEY_FILE, root / sub / PUBLIC_FILE]

    approved = [f"sensor-{i}" for i in range(1, sensors + 1)]
    spares = [f"sensor-spare-{i}" for i in range(1, spare_sensors + 1)]
    devices = {name: role_of(name) for name in [MOTHER_UNIT, STORAGE, PROCESSING, PORTAL,
                                                 *approved, *spares]}
    for name, role in devices.items():
        key = Ed25519PrivateKey.generate()
        cert = issue_device_certificate(ca_key, ca_cert, key.public_key(), device_id=name,
                                        role=role)
        ddir = root / name
        ddir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(ddir, 0o700)
        write_private_key(ddir / KEY_FILE, key, passphrase)
        _write_public(ddir / CERT_FILE, certificate_pem(cert).encode())
        files += [ddir / KEY_FILE, ddir / CERT_FILE]

    if software_ids is None:
        sids = {k: [compute_software_id(k).full] for k in LEGALLY_RELEVANT_KINDS}
    else:
        sids = {k: list(v) for k, v in software_ids.items()}
    params = parameters or GasMeterParameters()
    approval = TypeApproval(
        approval_id=f"TA-{uuid.uuid4().hex[:12]}",
        instrument_id=instrument_id,
        issued_at=dt.datetime.now(dt.UTC),
        software_ids=sids,
        approved_sensor_ids=approved,
        parameters=params,
        known_answer_tests=default_known_answer_tests(params),
    )
    signed = sign_type_approval(approval, authority_keys[NB_DIR])
    _write_public(root / TYPE_APPROVAL, signed.model_dump_json(indent=2).encode() + b"\n")
    files.append(root / TYPE_APPROVAL)

    manifest = {
        "layout_version": 1,
        "instrument_id": instrument_id,
        "created_at": approval.issued_at.isoformat(),
        "devices": devices,
        "approved_sensor_ids": approved,
        "spare_sensor_ids": spares,
        "passphrase_source": source,
    }
    # Issue 10: the broker's users, password file and ACL for exactly these devices.
    # Imported here: the broker configuration is the testbed's, not a component's.
    files += importlib.import_module("testbed.broker_config").write_broker_config(
        root, instrument_id, devices
    )
    _write_public(root / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
    files.append(root / MANIFEST)
    return ProvisionSummary(root, instrument_id, devices, approved, spares, sids, source, files)


class Provisioned:
    """Read access to provisioned material; what each component loads at start.

    Verifies on load: the type approval signature (notified body), each device
    certificate against the manufacturer CA, and that a private key matches its
    certificate. Authority private keys (CA, notified body, verification authority)
    are for the testbed's officer tools only; no component may load them.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        manifest_path = self.directory / MANIFEST
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        except FileNotFoundError as e:
            raise ProvisioningError(
                f"{self.directory} is not provisioned (no {MANIFEST}); run "
                f"`testbed provision --dir {self.directory}`", path=str(self.directory)
            ) from e
        except (OSError, ValueError) as e:
            raise ProvisioningError(f"cannot read {manifest_path}: {e}",
                                    path=str(manifest_path)) from e

    @property
    def instrument_id(self) -> str:
        return str(self.manifest["instrument_id"])

    @property
    def devices(self) -> dict[str, str]:
        return dict(self.manifest["devices"])

    @property
    def approved_sensor_ids(self) -> list[str]:
        return list(self.manifest["approved_sensor_ids"])

    @property
    def spare_sensor_ids(self) -> list[str]:
        return list(self.manifest.get("spare_sensor_ids", []))

    def device_dir(self, device: str) -> Path:
        if device not in self.manifest["devices"]:
            raise ProvisioningError(f"no device {device!r} in {self.directory}", device=device)
        return self.directory / device

    @cached_property
    def passphrase(self) -> bytes:
        return resolve_passphrase(self.directory)

    @cached_property
    def ca_certificate(self) -> x509.Certificate:
        path = self.directory / CA_DIR / "ca.crt"
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as e:
            raise CertificateInvalid(f"cannot load the manufacturer CA {path}: {e}",
                                     path=str(path)) from e

    def _public_key(self, sub: str) -> Ed25519PublicKey:
        path = self.directory / sub / PUBLIC_FILE
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as e:
            raise KeyFileError(f"cannot load public key {path}: {e}", path=str(path)) from e
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path} is not an Ed25519 public key", path=str(path))
        return key

    @cached_property
    def notified_body_public_key(self) -> Ed25519PublicKey:
        return self._public_key(NB_DIR)

    @cached_property
    def verification_authority_public_key(self) -> Ed25519PublicKey:
        return self._public_key(VA_DIR)

    @cached_property
    def type_approval(self) -> TypeApproval:
        """The type approval, signature verified (raises SignatureInvalid if edited)."""
        return load_type_approval(self.directory / TYPE_APPROVAL, self.notified_body_public_key)

    def certificate(self, device: str) -> x509.Certificate:
        """A device's certificate, verified against the manufacturer CA."""
        path = self.device_dir(device) / CERT_FILE
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as e:
            raise CertificateInvalid(f"cannot load {path}: {e}", path=str(path)) from e
        verify_device_certificate(cert, self.ca_certificate, expected_role=role_of(device),
                                  expected_id=device)
        return cert

    def public_key(self, device: str) -> Ed25519PublicKey:
        key = self.certificate(device).public_key()
        assert isinstance(key, Ed25519PublicKey)  # checked by verify_device_certificate
        return key

    def public_keys(self, role: str) -> dict[str, Ed25519PublicKey]:
        """Every provisioned device of ``role``: its key, its certificate checked (CA)."""
        return {
            device: self.public_key(device)
            for device, device_role in sorted(self.devices.items())
            if device_role == role
        }

    def identity(self, device: str) -> DeviceIdentity:
        """The device's own identity (decrypts its key; T5)."""
        cert = self.certificate(device)
        key = load_private_key(self.device_dir(device) / KEY_FILE, self.passphrase)
        cert_pub = cert.public_key()
        assert isinstance(cert_pub, Ed25519PublicKey)
        if ed25519_public_bytes(key) != ed25519_public_bytes(cert_pub):
            raise KeyFileError(f"{device}: private key does not match its certificate",
                               device=device)
        return DeviceIdentity(device, role_of(device), cert, self.ca_certificate, key)

    # --- per-device state (in the device's data dir) --------------------------------
    def pairing_store(self, device: str) -> PairingStore:
        """``DIR/<device>/pairings.json`` (key encrypted with the passphrase)."""
        return PairingStore(self.device_dir(device), self.passphrase)

    def boot_counter(self, device: str) -> BootCounter:
        """``DIR/<device>/boot_counter``; call ``next_boot()`` once per process start."""
        return BootCounter(self.device_dir(device) / "boot_counter")

    @property
    def logbook_origin(self) -> str:
        return f"welmec-testbed/{self.instrument_id}/logbook"

    @property
    def logbook_signer_name(self) -> str:
        return f"{self.instrument_id}/{MOTHER_UNIT}"

    def logbook(self) -> Logbook:
        """The mother unit's logbook, ``DIR/mother-unit/logbook.jsonl``."""
        return Logbook(self.device_dir(MOTHER_UNIT), origin=self.logbook_origin)

    def logbook_signer(self, identity: DeviceIdentity | None = None) -> NoteSigner:
        """Checkpoint signer: the mother unit's identity key, named ``<instrument>/mother-unit``."""
        ident = identity or self.identity(MOTHER_UNIT)
        return NoteSigner(self.logbook_signer_name, ident.private_key)

    def logbook_verifier(self) -> NoteVerifier:
        """Needs no secret: the mother unit's certificate, checked against the CA."""
        return NoteVerifier(self.logbook_signer_name, self.public_key(MOTHER_UNIT))

    # --- officer tools (testbed only) -------------------------------------------------
    def issue_pairing_authorization(
        self, sensor_id: str, *, ttl: dt.timedelta = dt.timedelta(minutes=10)
    ) -> PairingAuthorization:
        """The verification officer opens a pairing for ``sensor_id`` (P8/U8)."""
        return issue_authorization(self.verification_authority_key(),
                                   instrument_id=self.instrument_id, sensor_id=sensor_id, ttl=ttl)

    def verification_authority_key(self) -> Ed25519PrivateKey:
        return load_private_key(self.directory / VA_DIR / KEY_FILE, self.passphrase)

    def notified_body_key(self) -> Ed25519PrivateKey:
        return load_private_key(self.directory / NB_DIR / KEY_FILE, self.passphrase)

    def ca_key(self) -> Ed25519PrivateKey:
        return load_private_key(self.directory / CA_DIR / KEY_FILE, self.passphrase)
