"""The digital twin of the instrument (OIML Bulletin 2018 §4.3, "European Metrology Cloud").

"Information on the type of instrument and, in a substructure, information
concerning that particular instrument ... authorization profiles, a log file":
here the type part comes from the type approval (its notified-body signature is
checked when the portal loads it), the instance part from the provisioning
manifest, and the live parts from what the instrument publishes and what the
mother unit answers through the protective interface (``get_twin``). The twin
is a view for all parties, not legally relevant itself (S).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from remote_portal.view import InstrumentView
from security_module.provisioning import Provisioned

TWIN_VERSION = 1


@dataclass(frozen=True)
class TwinType:
    """What does not change while the instrument runs (read once at start)."""

    approval: dict[str, Any]
    instance: dict[str, Any]

    @classmethod
    def load(cls, material: Provisioned) -> TwinType:
        approval = material.type_approval  # notified-body signature verified on load
        return cls(
            approval=json.loads(approval.model_dump_json()),
            instance={
                "instrument_id": material.instrument_id,
                "devices": material.devices,
                "approved_sensor_ids": material.approved_sensor_ids,
                "spare_sensor_ids": material.spare_sensor_ids,
                "logbook_signer": material.logbook_signer_name,
            },
        )


def _json_field(data: dict[str, Any], name: str) -> Any:
    raw = data.get(name)
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def build_twin(static: TwinType, view: InstrumentView) -> dict[str, Any]:
    approval = static.approval
    state = view.state
    mother = view.mother_twin
    components = view.components()
    return {
        "twin_version": TWIN_VERSION,
        "generated_at": time.time(),
        "legally_relevant": False,
        "type": {
            "approval_id": approval.get("approval_id"),
            "instrument_type": approval.get("instrument_type"),
            "issuer": approval.get("issuer"),
            "issued_at": approval.get("issued_at"),
            "approved_software_ids": approval.get("software_ids"),
            "approved_sensor_ids": approval.get("approved_sensor_ids"),
            "parameters": approval.get("parameters"),
            "known_answer_tests": [t.get("name") for t in approval.get("known_answer_tests", [])],
        },
        "instance": static.instance,
        "components": [
            {k: c[k] for k in ("id", "kind", "online", "software_id", "approval")}
            for c in components
        ],
        "pairing": {
            "paired_sensors": None if state is None else state.paired_sensors,
            "records": _json_field(mother, "pairings"),
        },
        "parameters": {
            "approved": approval.get("parameters"),
            "in_use": _json_field(mother, "parameters"),
        },
        "software_identifiers": {
            "reported": None if state is None else state.software_ids,
            "approved_by_mother_unit": None if state is None else state.software_approved,
            "by_component": {c["id"]: c["software_id"] for c in components},
        },
        "state": None if state is None else {
            "state": state.state, "reasons": state.reasons, "event_counter": state.event_counter,
        },
        "logbook_head": {
            "checkpoint": None if view.checkpoint is None else view.checkpoint.as_json(),
            "verification": view.logbook()["status"],
            "event_counter": mother.get("event_counter"),
            "size": mother.get("logbook_size"),
        },
        "display_language": mother.get("display_language"),
    }
