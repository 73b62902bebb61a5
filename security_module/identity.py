"""Device identities: Ed25519 keys with X.509 certificates from the manufacturer CA.

Certificate subject: ``O=<manufacturer>, OU=<component kind>, CN=<device name>``;
the component kind is the role ("mother_unit", "remote_sensor", ...), the common
name is the device id ("sensor-1"). Pairing checks both (P8/U8).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import NameOID

from security_module.errors import CertificateInvalid

__all__ = [
    "MANUFACTURER",
    "DeviceIdentity",
    "PeerCertificate",
    "certificate_fingerprint",
    "certificate_from_pem",
    "certificate_pem",
    "issue_device_certificate",
    "make_ca",
    "verify_device_certificate",
]

MANUFACTURER = "WELMEC Testbed Manufacturer"
_CERT_VALIDITY = dt.timedelta(days=3650)


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, MANUFACTURER)]
    if unit is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(
    key: Ed25519PrivateKey, *, name: str = "Manufacturer CA", now: dt.datetime | None = None
) -> x509.Certificate:
    """A self-signed Ed25519 manufacturer CA certificate."""
    now = now or _now()
    subject = _name(name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(key, algorithm=None)


def issue_device_certificate(
    ca_key: Ed25519PrivateKey,
    ca_cert: x509.Certificate,
    device_public: Ed25519PublicKey,
    *,
    device_id: str,
    role: str,
    now: dt.datetime | None = None,
    validity: dt.timedelta = _CERT_VALIDITY,
) -> x509.Certificate:
    now = now or _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(device_id, role))
        .issuer_name(ca_cert.subject)
        .public_key(device_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(ca_key, algorithm=None)


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_from_pem(pem: str | bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as e:
        raise CertificateInvalid("not a PEM X.509 certificate") from e


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class PeerCertificate:
    """A certificate that chains to the manufacturer CA, with its subject decoded."""

    device_id: str
    role: str
    public_key: Ed25519PublicKey
    fingerprint: str
    certificate: x509.Certificate = field(repr=False)


def verify_device_certificate(
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    *,
    expected_role: str | None = None,
    expected_id: str | None = None,
    now: dt.datetime | None = None,
) -> PeerCertificate:
    """Check that ``cert`` was issued by the manufacturer CA, is valid now, is a device
    (not a CA) certificate and names the expected role/device. Raises CertificateInvalid.
    """
    fields = {"subject": cert.subject.rfc4514_string()}
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError) as e:
        raise CertificateInvalid("certificate is not issued by the manufacturer CA",
                                 **fields) from e
    except Exception as e:  # InvalidSignature
        raise CertificateInvalid("certificate signature does not verify against the "
                                 "manufacturer CA", **fields) from e
    now = now or _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateInvalid("certificate is outside its validity period",
                                 not_after=cert.not_valid_after_utc.isoformat(), **fields)
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as e:
        raise CertificateInvalid("device certificate lacks BasicConstraints", **fields) from e
    if bc.ca:
        raise CertificateInvalid("a CA certificate cannot be a device identity", **fields)
    pub = cert.public_key()
    if not isinstance(pub, Ed25519PublicKey):
        raise CertificateInvalid("device key is not Ed25519", **fields)
    device_id = _attr(cert.subject, NameOID.COMMON_NAME)
    role = _attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if device_id is None or role is None:
        raise CertificateInvalid("certificate subject lacks CN or OU", **fields)
    if expected_role is not None and role != expected_role:
        raise CertificateInvalid("certificate names another role", expected=expected_role,
                                 got=role, **fields)
    if expected_id is not None and device_id != expected_id:
        raise CertificateInvalid("certificate names another device", expected=expected_id,
                                 got=device_id, **fields)
    return PeerCertificate(device_id, role, pub, certificate_fingerprint(cert), cert)


@dataclass(frozen=True)
class DeviceIdentity:
    """A device's own identity: private key, certificate, and the CA it chains to.

    T5: the private key is never part of repr/str.
    """

    device_id: str
    role: str
    certificate: x509.Certificate = field(repr=False)
    ca_certificate: x509.Certificate = field(repr=False)
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.certificate)

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate)
