"""After-run evidence of one scenario, taken from its directory once every process has stopped.

The evidence report (issue 8) needs more than the verdict: what the instrument
was (type approval, parameters, the identifiers its components announced and
whether they are approved, the event counter), an independent verification of
the logbook (as ``testbed logbook verify``) and of the stored records (as
``testbed verify-store``, L6), and the T7 transmission delays of the records
stored during the run. All of it is read from public material and files only,
like a notified body would; nothing here can change a verdict. A failure to
read something is recorded as such (``skipped`` / ``approval_error``), never
raised: the run's result must always be written.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mother_unit.records_log import records_origin
from remote_storage.store import StoreError
from security_module.errors import SecurityError
from security_module.logbook import LOGBOOK_FILE, scan_logbook
from security_module.logbook_verify import verify_logbook
from security_module.provisioning import MOTHER_UNIT, STORAGE, Provisioned, role_of
from security_module.software_id import (
    COMPONENT_PACKAGES,
    LEGALLY_RELEVANT_KINDS,
    software_id_of_dirs,
)
from simulations.live import installed_dir
from simulations.results import (
    ComponentIdentity,
    InstrumentEvidence,
    InstrumentSnapshot,
    LogCheck,
    TransmissionDelays,
)
from testbed.verify_store import StoreVerification, verify_sqlite

if TYPE_CHECKING:
    from simulations.observe import Observer

MAX_DELAY_SAMPLES = 500
MAX_BAD_LISTED = 50
MAX_ENTRIES = 200  # logbook entries of a testbed directory shown (the newest)
RECORDS_DB = "records.sqlite"
ORIGIN_PROBLEM = "checkpoint has another origin"
LIBRARIES = ("aiomqtt", "paho-mqtt", "cryptography", "pydantic")


def _material(directory: Path) -> Provisioned | None:
    return Provisioned(directory) if (directory / "manifest.json").is_file() else None


def instrument_snapshot(directory: Path, observer: Observer | None) -> InstrumentSnapshot | None:
    """The type approval of the run's directory and the last retained state it published."""
    material = _material(directory)
    if material is None:
        return None
    fields: dict[str, object] = {"instrument_id": material.instrument_id}
    approved: Mapping[str, list[str]] = {}
    try:
        approval = material.type_approval
    except (SecurityError, OSError, ValueError) as e:
        fields["approval_error"] = str(e)
    else:
        approved = approval.software_ids
        fields.update(
            instrument_type=approval.instrument_type,
            approval_id=approval.approval_id,
            approval_issued_at=approval.issued_at.isoformat(),
            parameters=approval.parameters.model_dump(mode="json"),
            approved_software_ids={k: list(v) for k, v in approved.items()},
            approved_sensor_ids=list(approval.approved_sensor_ids),
        )
    if observer is not None:
        state = observer.state
        if state is not None:
            fields.update(
                state=state.state,
                reasons=list(state.reasons),
                event_counter=state.event_counter,
                paired_sensors=list(state.paired_sensors),
            )
        fields["components"] = [
            ComponentIdentity(
                component_id=cid,
                kind=s.component,
                software_id=s.software_id,
                approved=(s.software_id in approved.get(s.component, []))
                if s.component in LEGALLY_RELEVANT_KINDS
                else None,
            )
            for cid, s in sorted(observer.statuses.items())
        ]
        fields["identifiers_from"] = "announced on the broker"
    return InstrumentSnapshot.model_validate(fields)


def installed_identifiers(material: Provisioned, approved: Mapping[str, list[str]]) -> list[
    ComponentIdentity
]:
    """Each provisioned device with the identifier of the code installed here for its kind."""
    ids = {
        kind: software_id_of_dirs([(n, installed_dir(n)) for n in packages]).full
        for kind, packages in COMPONENT_PACKAGES.items()
    }
    out = []
    for device in sorted(material.devices):
        kind = role_of(device)
        sid = ids.get(kind)
        legally_relevant = kind in LEGALLY_RELEVANT_KINDS
        out.append(ComponentIdentity(
            component_id=device, kind=kind, software_id=sid,
            approved=(sid in approved.get(kind, [])) if legally_relevant else None,
        ))
    return out


def directory_evidence(directory: Path, *, entries: int = MAX_ENTRIES) -> InstrumentEvidence:
    """A provisioned testbed directory as it is now (e.g. after ``testbed up``)."""
    snapshot = instrument_snapshot(directory, None)
    material = _material(directory)
    if snapshot is not None and material is not None:
        snapshot = snapshot.model_copy(update={
            "components": installed_identifiers(material, snapshot.approved_software_ids),
            "identifiers_from": "computed from the installed code",
        })
    store, delays = store_check_and_delays(directory)
    path = directory / MOTHER_UNIT / LOGBOOK_FILE
    newest = scan_logbook(path.read_bytes()).entries[-entries:] if path.exists() else []
    return InstrumentEvidence(
        dir=str(directory),
        instrument=snapshot,
        logbook_check=logbook_check(directory),
        store_check=store,
        delays=delays,
        logbook_entries=[e.model_dump(mode="json") for e in newest],
    )


def logbook_check(directory: Path) -> LogCheck:
    """``testbed logbook verify`` on the run's mother unit logbook."""
    path = directory / MOTHER_UNIT / LOGBOOK_FILE
    material = _material(directory)
    if material is None or not path.exists():
        return LogCheck(ok=None, skipped="no logbook: no mother unit ran here")
    warnings: list[str] = []
    try:
        verifier = material.logbook_verifier()
        origin = material.logbook_origin
        result = verify_logbook(path, verifier, origin=origin)
        if not result.ok and result.problems and all(ORIGIN_PROBLEM in p for p in result.problems):
            # Every checkpoint is signed by the mother unit but names another log than
            # the provisioned one: verify the signatures and the tree all the same, and
            # say plainly that the strict check (``testbed logbook verify``) fails.
            warnings.append(
                f"strict check failed: the checkpoints do not name this instrument's log "
                f"({origin!r}); `testbed logbook verify` reports FAILED. Verified below "
                f"with the origin they carry: {result.problems[0]}"
            )
            result = verify_logbook(path, verifier, origin=None)
        scan = scan_logbook(path.read_bytes())
    except (SecurityError, OSError, ValueError) as e:
        return LogCheck(ok=None, skipped=f"cannot verify the logbook: {e}")
    return LogCheck(
        ok=result.ok,
        size=result.entries,
        checkpoints=result.checkpoints,
        checkpoint_size=result.newest_checkpoint_size,
        unsigned=result.unsigned_entries,
        root=scan.tree.root(scan.tree.size).hex() if scan.tree.size else "",
        event_counter=result.event_counter,
        bad=[] if result.first_bad_index is None else [f"entry {result.first_bad_index}"],
        problems=list(result.problems),
        warnings=warnings + list(result.warnings),
    )


def _verify_store(directory: Path) -> StoreVerification | LogCheck:
    db = directory / STORAGE / RECORDS_DB
    material = _material(directory)
    if material is None or not db.exists():
        return LogCheck(ok=None, skipped="no store: no remote storage ran here")
    try:
        approval = material.type_approval
        return verify_sqlite(
            db,
            verifier=material.logbook_verifier(),
            origin=records_origin(material.instrument_id),
            instrument=material.instrument_id,
            approved={k: list(v) for k, v in approval.software_ids.items()},
            keep_records=True,
            workers=1,
        )
    except (SecurityError, StoreError, OSError, ValueError) as e:
        return LogCheck(ok=None, skipped=f"cannot verify the store: {e}")


def store_check_and_delays(directory: Path) -> tuple[LogCheck, TransmissionDelays | None]:
    """``testbed verify-store`` (L6) on the run's store, and the T7 delays of its records."""
    verified = _verify_store(directory)
    if isinstance(verified, LogCheck):
        return verified, None
    bad = sorted(verified.bad.values(), key=lambda b: b.seq)
    check = LogCheck(
        ok=verified.ok,
        size=verified.records,
        checkpoints=verified.checkpoints,
        checkpoint_size=verified.signed_size,
        unsigned=max(0, verified.records - verified.verified_upto),
        root=verified.root,
        bad=[f"seq {b.seq}: {b.reason}" for b in bad[:MAX_BAD_LISTED]]
        + ([f"... and {len(bad) - MAX_BAD_LISTED} more"] if len(bad) > MAX_BAD_LISTED else []),
        problems=list(verified.problems),
        warnings=list(verified.warnings),
    )
    material = _material(directory)
    limit: float | None = None
    if material is not None:
        try:
            limit = float(material.type_approval.parameters.max_transmission_delay_ms)
        except (SecurityError, OSError, ValueError):
            limit = None
    records = [verified.parsed[s] for s in sorted(verified.parsed)]
    return check, transmission_delays(
        [(r.received_at - r.created_at) * 1000.0 for r in records], limit
    )


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def transmission_delays(delays_ms: list[float], limit_ms: float | None) -> TransmissionDelays:
    """Summary of T7 delays (in record order) and an evenly spaced sample of them."""
    if not delays_ms:
        return TransmissionDelays(max_allowed_ms=limit_ms)
    ordered = sorted(delays_ms)
    step = max(1, -(-len(delays_ms) // MAX_DELAY_SAMPLES))
    return TransmissionDelays(
        max_allowed_ms=limit_ms,
        count=len(delays_ms),
        over_max=sum(d > limit_ms for d in delays_ms) if limit_ms is not None else 0,
        negative=sum(d < 0 for d in delays_ms),
        min_ms=round(ordered[0], 3),
        p50_ms=round(_quantile(ordered, 0.5), 3),
        p99_ms=round(_quantile(ordered, 0.99), 3),
        max_ms=round(ordered[-1], 3),
        samples_ms=[round(d, 3) for d in delays_ms[::step]],
    )


def _broker_version(broker: str) -> str:
    if broker == "mosquitto":
        binary = shutil.which("mosquitto")
        if binary is None:
            return "mosquitto (not installed)"
        try:
            # ``mosquitto -h`` prints "mosquitto version 2.0.11" first (and exits 3).
            out = subprocess.run(
                [binary, "-h"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return "mosquitto"
        first = out.splitlines()[0] if out else ""
        return first.replace(" version ", " ") if first else "mosquitto"
    if broker == "embedded":
        return f"embedded (testbed.mqtt_broker, welmec-testbed {_version('welmec-testbed')})"
    return broker


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(broker: str) -> dict[str, str]:
    """Versions used in a run: python, the testbed, the broker and the libraries on the wire."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "welmec-testbed": _version("welmec-testbed"),
        "broker": _broker_version(broker),
        **{lib: _version(lib) for lib in LIBRARIES},
    }
