"""Optional TLS listener material for the instrument's broker (issue 10).

A small ECDSA P-256 CA of the broker and one server certificate for the names a
client uses to reach it (``mosquitto`` in docker-compose, ``localhost``,
``127.0.0.1``). ECDSA rather than the devices' Ed25519, because every TLS stack a
researcher's MQTT client may use speaks it. Clients trust DIR/broker/tls/ca.crt;
they still log in with their password (the ACL is keyed on the user name).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_NAMES = ("mosquitto", "localhost")
SERVER_IPS = ("127.0.0.1",)
VALIDITY = dt.timedelta(days=825)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "welmec-testbed"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        # Mosquitto cannot ask for a passphrase at start; the file is 0600 instead.
        serialization.NoEncryption(),
    )


def write_tls_material(tls_dir: Path) -> list[Path]:
    """Write ca.crt, server.crt and server.key (0600) into ``tls_dir``."""
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("testbed broker CA"))
        .issuer_name(_name("testbed broker CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in SERVER_NAMES] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_IPS
    ]
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("mosquitto"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = {
        "ca.crt": (ca.public_bytes(serialization.Encoding.PEM), 0o644),
        "server.crt": (server.public_bytes(serialization.Encoding.PEM), 0o644),
        "server.key": (_key_pem(key), 0o600),
    }
    written = []
    for name, (data, mode) in files.items():
        path = tls_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        written.append(path)
    return written
