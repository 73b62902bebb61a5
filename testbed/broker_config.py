"""The hardened broker of one instrument: MQTT users, passwords and the ACL (issue 10).

A broker is a line of defence of its own (WELMEC 7.3 A_Spoofing at the transport
level): a client that is not one of the instrument's parts must not connect, and a
part must not publish where another one speaks. ``testbed provision`` calls
:func:`write_broker_config`, which writes::

    DIR/<user>/mqtt_password        the user's random password, 0600 (dir 0700)
    DIR/broker/passwords            Mosquitto password file (PBKDF2-SHA512 hashes), 0600
    DIR/broker/acl                  Mosquitto ACL file, 0600
    DIR/broker/mosquitto.conf       deployment configuration (docker-compose), 0644

Users are the component ids (``mother-unit``, ``storage``, ``processing``,
``sensor-<n>``, ``sensor-spare-<n>``) — a component's id is its client id *and*
its user name — and four tools: ``officer`` (pairing commands), ``verifier``
(storage queries, read-only views), ``supervisor`` and ``observer`` (status).

The ACL is generated from :data:`ACL_TABLE`: role -> the topics it may write
(publish) and read (subscribe / receive), built with :class:`wire.topics.Topics`
so that it follows the topic tree. The rules are keyed on the *authenticated
user name*, never the client id (a client chooses its client id freely):

- rules that name the user itself and hold for every user are Mosquitto
  ``pattern`` lines with ``%u`` (publish your own status, read replies addressed
  to you);
- everything else is in a ``user <name>`` block with the name written out,
  because Mosquitto applies ``pattern`` lines to *all* users: a sensor-only
  pattern would let the storage speak as a sensor called "storage".

Documented in docs/topics.md ("Who may publish and subscribe where").
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wire.settings import MQTT_PASSWORD_FILE, BrokerAddress
from wire.topics import Topics

BROKER_DIR = "broker"
PASSWORD_FILE = "passwords"  # noqa: S105 - a file name, not a password
ACL_FILE = "acl"
CONFIG_FILE = "mosquitto.conf"
DEPLOY_PORT = 1883
DEPLOY_TLS_PORT = 8883
# Set to 1 for `testbed provision` to add a TLS listener (server certificate signed
# by a broker CA written into DIR/broker/tls/); plain MQTT stays available.
TLS_ENV = "TESTBED_BROKER_TLS"

# The testbed's own tools, each with its own credential (role = user name).
OFFICER = "officer"
VERIFIER = "verifier"
SUPERVISOR = "supervisor"
OBSERVER = "observer"
TOOLS = (OFFICER, VERIFIER, SUPERVISOR, OBSERVER)

USER = "%u"  # Mosquitto's substitution for the authenticated user name
_ANY = "__any__"  # stands for one "+" level while a Topics method builds a name

# Mosquitto 2's own default (mosquitto_passwd). The passwords are 256-bit random
# strings, not human secrets: more iterations would not make guessing harder.
PBKDF2_ITERATIONS = 101


@dataclass(frozen=True)
class Access:
    """Topic filters one user may write (publish) and read (subscribe, receive)."""

    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()


def _any(build: Callable[[str], str]) -> str:
    """A Topics method's name with its identifier segment as the ``+`` wildcard."""
    return build(_ANY).replace(_ANY, "+")


def _mother_unit(t: Topics, me: str) -> Access:
    return Access(
        write=(
            _any(t.sensor_control),
            _any(t.mother_pairing),
            t.processing_request,
            t.storage_records,
            t.storage_query,  # L6 self-checks against its own checkpoints
            t.state,
            t.indication,
            t.checkpoint,
            t.command_reply,
        ),
        read=(
            t.sensor_data_all,
            t.sensor_pairing_all,
            t.processing_response,
            t.storage_ack,
            t.command,
            t.status_all,  # T8: availability of its remote parts
        ),
    )


def _sensor(t: Topics, me: str) -> Access:
    # Only its own slot: no sensor reads another's pairing messages or speaks for it.
    return Access(
        write=(t.sensor_data(me), t.sensor_pairing(me)),
        read=(t.sensor_control(me), t.mother_pairing(me)),
    )


def _storage(t: Topics, me: str) -> Access:
    # It answers whoever asked, on storage/reply/<asker>; each asker reads only its own.
    return Access(
        write=(t.storage_ack, _any(t.storage_reply)),
        read=(t.storage_records, t.storage_query),
    )


def _processing(t: Topics, me: str) -> Access:
    return Access(write=(t.processing_response,), read=(t.processing_request,))


def _officer(t: Topics, me: str) -> Access:
    # P8/U8: pairing and un-pairing are commands to the mother unit; the answer comes back.
    return Access(write=(t.command,), read=(t.command_reply, t.state, t.status_all))


def _verifier(t: Topics, me: str) -> Access:
    # L6: an independent verifier asks the store and reads what the mother unit signed.
    return Access(
        write=(t.storage_query,),
        read=(t.checkpoint, t.indication, t.state, t.status_all),
    )


def _portal(t: Topics, me: str) -> Access:
    # WELMEC 7.3 §4.3 / S (issue 11): the remote portal reads what the instrument
    # publishes and may send commands only; the mother unit's protective interface
    # refuses any command outside its documented non-relevant list.
    return Access(
        write=(t.command,),
        read=(t.status_all, t.state, t.indication, t.checkpoint, t.command_reply),
    )


def _observer(t: Topics, me: str) -> Access:
    # Supervisor, `testbed status`, displays: read-only.
    return Access(read=(t.status_all, t.state, t.indication, t.checkpoint))


# role -> rules; a new topic means a new line here (tests/deploy checks the coverage).
ACL_TABLE: Mapping[str, Callable[[Topics, str], Access]] = {
    "mother_unit": _mother_unit,
    "remote_sensor": _sensor,
    "remote_storage": _storage,
    "remote_processing": _processing,
    "remote_portal": _portal,
    OFFICER: _officer,
    VERIFIER: _verifier,
    SUPERVISOR: _observer,
    OBSERVER: _observer,
}


def common_access(t: Topics) -> Access:
    """What every authenticated user may do, about itself only (``pattern`` lines)."""
    return Access(write=(t.status(USER),), read=(t.storage_reply(USER),))


def users_of(devices: Mapping[str, str]) -> dict[str, str]:
    """MQTT user -> role: every provisioned device (by its role) and every tool."""
    return {**dict(devices), **{tool: tool for tool in TOOLS}}


def role_access(role: str, topics: Topics, user: str) -> Access:
    """The role's rules from :data:`ACL_TABLE`; none for a role it does not know yet.

    Fail closed: a new kind of component gets a login and its own status topic,
    and nothing else until somebody writes down what it may touch.
    """
    rules = ACL_TABLE.get(role)
    return rules(topics, user) if rules is not None else Access()


def access_of(role: str, topics: Topics, user: str) -> Access:
    """The user's own rules plus the common ones with ``%u`` written out."""
    own = role_access(role, topics, user)
    common = common_access(topics)
    return Access(
        write=own.write + tuple(w.replace(USER, user) for w in common.write),
        read=own.read + tuple(r.replace(USER, user) for r in common.read),
    )


def acl_text(instrument_id: str, users: Mapping[str, str]) -> str:
    """The Mosquitto ACL file for ``users`` (user -> role)."""
    t = Topics(instrument_id)
    lines = [
        f"# Generated by `testbed provision` for instrument {instrument_id}; see docs/topics.md.",
        "# Keyed on the authenticated user name (%u, user blocks), never the client id.",
        "# No line before the first `user`: anonymous clients get nothing (and are refused).",
        "",
        "# Every user, about itself only.",
    ]
    common = common_access(t)
    lines += [f"pattern write {w}" for w in common.write]
    lines += [f"pattern read {r}" for r in common.read]
    for user, role in sorted(users.items()):
        own = role_access(role, t, user)
        known = "" if role in ACL_TABLE else " (not in ACL_TABLE: status only)"
        lines += ["", f"# {role}{known}", f"user {user}"]
        lines += [f"topic write {w}" for w in own.write]
        lines += [f"topic read {r}" for r in own.read]
    return "\n".join(lines) + "\n"


# -- passwords ----------------------------------------------------------------------------


def new_password() -> str:
    """256 random bits, URL-safe (it may appear in mqtt://user:pass@host URLs)."""
    return secrets.token_urlsafe(32)


def pbkdf2_hash(password: str, *, salt: bytes | None = None,
                iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2's password hash: ``$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>``."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_passwd_path() -> str | None:
    return shutil.which("mosquitto_passwd") or shutil.which(
        "mosquitto_passwd", path="/usr/bin:/usr/sbin:/usr/local/bin"
    )


def password_file_text(passwords: Mapping[str, str], *, use_tool: bool = True) -> str:
    """``user:hash`` lines; hashed by ``mosquitto_passwd -U`` when installed, else here."""
    tool = mosquitto_passwd_path() if use_tool else None
    if tool is not None:
        # -U hashes a plain file in place: no password ever appears in an argv (ps).
        with tempfile.TemporaryDirectory(prefix="testbed-passwd-") as tmp:
            plain = Path(tmp) / "passwords"
            plain.touch(mode=0o600)
            plain.write_text("".join(f"{u}:{p}\n" for u, p in sorted(passwords.items())))
            subprocess.run([tool, "-U", str(plain)], check=True, capture_output=True, timeout=30)
            return plain.read_text()
    return "".join(f"{u}:{pbkdf2_hash(p)}\n" for u, p in sorted(passwords.items()))


# -- configuration --------------------------------------------------------------------------


def broker_dir(dir: Path) -> Path:
    return dir / BROKER_DIR


def has_broker_config(dir: Path) -> bool:
    b = broker_dir(dir)
    return (b / PASSWORD_FILE).is_file() and (b / ACL_FILE).is_file()


def security_lines(dir: Path) -> list[str]:
    """The part of a mosquitto.conf that makes the broker the instrument's own."""
    b = broker_dir(dir).resolve()
    return [
        "# Issue 10: no anonymous clients; one user per component; ACL on the user name.",
        "allow_anonymous false",
        f"password_file {b / PASSWORD_FILE}",
        f"acl_file {b / ACL_FILE}",
    ]


def deployment_config(dir: Path, *, tls: bool = False) -> str:
    """DIR/broker/mosquitto.conf: what the ``mosquitto`` service of docker-compose runs."""
    lines = [
        "# Generated by `testbed provision`; docker-compose's mosquitto service runs it.",
        "# `testbed up` runs its own listener on a free loopback port with the same",
        "# password file and ACL (testbed/broker.py).",
        f"listener {DEPLOY_PORT}",
        "set_tcp_nodelay true",  # ARCHITECTURE.md §10: ~88 ms per QoS 1 round trip without
        *security_lines(dir),
    ]
    if tls:
        t = (broker_dir(dir) / "tls").resolve()
        lines += [
            f"listener {DEPLOY_TLS_PORT}",
            f"cafile {t / 'ca.crt'}",
            f"certfile {t / 'server.crt'}",
            f"keyfile {t / 'server.key'}",
            "tls_version tlsv1.2",
        ]
    lines += [
        "persistence false",  # components re-announce their retained state on connect
        "log_dest stderr",  # unbuffered: `docker compose logs` shows it as it happens
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    return "\n".join(lines) + "\n"


def native_config(dir: Path, port: int, host: str = "127.0.0.1",
                  log_file: Path | None = None) -> str:
    """The deployment configuration for a Mosquitto run by this user on ``host:port``."""
    text = deployment_config(dir, tls=False).replace(
        f"listener {DEPLOY_PORT}\n", f"listener {port} {host}\n"
    )
    # As root Mosquitto switches to user "mosquitto" before reading the password file;
    # stay who we are, so that it can read our 0600 files.
    text += f"user {getpass.getuser()}\n"
    if log_file is None:
        return text
    return text.replace("log_dest stderr", f"log_dest file {log_file}", 1)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC


def write_broker_config(
    dir: Path, instrument_id: str, devices: Mapping[str, str], *, tls: bool | None = None
) -> list[Path]:
    """Write passwords, password file, ACL and mosquitto.conf for ``devices`` (name -> role)."""
    users = users_of(devices)
    passwords = {user: new_password() for user in users}
    files: list[Path] = []
    for user, password in passwords.items():
        path = dir / user / MQTT_PASSWORD_FILE
        _write_secret(path, password + "\n")
        files.append(path)
    b = broker_dir(dir)
    b.mkdir(parents=True, exist_ok=True, mode=0o755)
    _write_secret(b / PASSWORD_FILE, password_file_text(passwords))
    _write_secret(b / ACL_FILE, acl_text(instrument_id, users))
    if tls is None:
        tls = os.environ.get(TLS_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    if tls:
        from testbed.broker_tls import write_tls_material  # noqa: PLC0415 - optional feature

        files += write_tls_material(b / "tls")
    (b / CONFIG_FILE).write_text(deployment_config(dir, tls=tls), encoding="utf-8")
    os.chmod(b / CONFIG_FILE, 0o644)
    files += [b / PASSWORD_FILE, b / ACL_FILE, b / CONFIG_FILE]
    return files


def hand_over(dir: Path, uid: int, gid: int) -> bool:
    """Give DIR/broker to the broker's user (the eclipse-mosquitto image runs as 1883).

    Mosquitto 2 reads the password file *after* dropping root, so a 0600 file owned by
    the provisioning user is unreadable to it. Only root may chown; returns False
    (nothing changed) otherwise — then the provisioning user is the one that runs it.
    """
    if os.geteuid() != 0:
        return False
    b = broker_dir(dir)
    for path in [b, *b.rglob("*")]:
        os.chown(path, uid, gid)
    return True


# -- the tools' side ----------------------------------------------------------------------


def tool_address(dir: Path, broker: BrokerAddress | str, role: str) -> BrokerAddress:
    """The broker address with ``role``'s credentials from DIR (unchanged if none there).

    Every testbed tool connects as itself (supervisor, officer, verifier, observer),
    so that the broker's ACL gives it exactly what it needs and the broker's log
    names who did what.
    """
    address = BrokerAddress.parse(broker) if isinstance(broker, str) else broker
    return address.with_password_from(dir, role)


def topics_written_by(instrument_id: str, users: Mapping[str, str]) -> Iterable[str]:
    """Every write filter of every user (coverage checks in tests)."""
    t = Topics(instrument_id)
    for user, role in users.items():
        yield from access_of(role, t, user).write
