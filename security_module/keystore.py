"""Private keys and secrets at rest (T5/L5, A_CRYPTO_RET).

* Private keys are PEM PKCS#8, encrypted with ``BestAvailableEncryption`` under a
  passphrase, files mode 0600 (directories 0700).
* The passphrase comes from, in this order: ``$TESTBED_KEY_PASSPHRASE``; the file named
  by ``$TESTBED_KEY_PASSPHRASE_FILE``; ``DIR/secrets/passphrase`` (written by
  ``provision``, random, 0600).
* Loading refuses a key file readable by group/others, and a wrong passphrase, with
  a :class:`KeyFileError` naming the path and the fix.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security_module.errors import KeyFileError

__all__ = [
    "ENV_PASSPHRASE",
    "ENV_PASSPHRASE_FILE",
    "PASSPHRASE_RELPATH",
    "check_private_file",
    "generate_passphrase_file",
    "load_private_key",
    "passphrase_source",
    "resolve_passphrase",
    "write_private_file",
    "write_private_key",
]

ENV_PASSPHRASE = "TESTBED_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
ENV_PASSPHRASE_FILE = "TESTBED_KEY_PASSPHRASE_FILE"  # noqa: S105 - a variable name
PASSPHRASE_RELPATH = Path("secrets") / "passphrase"


def passphrase_source(provision_dir: Path | str | None) -> str:
    """Where :func:`resolve_passphrase` would read from: "env", "env-file" or "dir-file"."""
    if os.environ.get(ENV_PASSPHRASE):
        return "env"
    if os.environ.get(ENV_PASSPHRASE_FILE):
        return "env-file"
    return "dir-file"


def check_private_file(path: Path) -> None:
    """Refuse a secret file that group or others can access (T5)."""
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise KeyFileError(f"{path} does not exist; run `testbed provision`", path=str(path)) from e
    except OSError as e:
        raise KeyFileError(f"cannot stat {path}: {e}", path=str(path)) from e
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{path} is accessible by group/others (mode {mode:04o}); "
            f"a secret must be private: run `chmod 600 {path}`",
            path=str(path),
            mode=f"{mode:04o}",
        )


def _read_secret(path: Path) -> bytes:
    check_private_file(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read {path}: {e}", path=str(path)) from e
    data = data.rstrip(b"\r\n")
    if not data:
        raise KeyFileError(f"passphrase file {path} is empty", path=str(path))
    return data


def resolve_passphrase(provision_dir: Path | str | None) -> bytes:
    """The passphrase protecting private keys (see module docstring for the order)."""
    env = os.environ.get(ENV_PASSPHRASE)
    if env:
        return env.encode("utf-8")
    env_file = os.environ.get(ENV_PASSPHRASE_FILE)
    if env_file:
        return _read_secret(Path(env_file))
    if provision_dir is None:
        raise KeyFileError(
            f"no passphrase: set {ENV_PASSPHRASE} or {ENV_PASSPHRASE_FILE}",
        )
    path = Path(provision_dir) / PASSPHRASE_RELPATH
    if not path.exists():
        raise KeyFileError(
            f"no passphrase: {path} does not exist; set {ENV_PASSPHRASE} or "
            f"{ENV_PASSPHRASE_FILE}, or re-run `testbed provision`",
            path=str(path),
        )
    return _read_secret(path)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new 0600 file (replacing any old one) and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask must not widen it, nor an old tmp file
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def generate_passphrase_file(provision_dir: Path) -> Path:
    path = provision_dir / PASSPHRASE_RELPATH
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    write_private_file(path, secrets.token_urlsafe(32).encode("ascii") + b"\n")
    return path


def write_private_key(path: Path, key: Ed25519PrivateKey, passphrase: bytes) -> None:
    """Encrypted PKCS#8 PEM, mode 0600 (T5: keys never at rest in clear)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    write_private_file(path, pem)


def load_private_key(path: Path | str, passphrase: bytes) -> Ed25519PrivateKey:
    """Load an encrypted Ed25519 key; :class:`KeyFileError` with the fix on any problem."""
    path = Path(path)
    check_private_file(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read {path}: {e}", path=str(path)) from e
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        raise KeyFileError(
            f"{path} is not encrypted; re-provision (keys must be encrypted at rest)",
            path=str(path),
        ) from e
    except ValueError as e:
        raise KeyFileError(
            f"cannot decrypt {path}: wrong passphrase or damaged file; set "
            f"{ENV_PASSPHRASE} / {ENV_PASSPHRASE_FILE} to the passphrase used at provisioning "
            f"(default: <provision dir>/{PASSPHRASE_RELPATH.as_posix()})",
            path=str(path),
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} does not hold an Ed25519 key", path=str(path))
    return key
