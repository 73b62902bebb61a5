"""The type approval: what the notified body approved, signed with its Ed25519 key.

Lists the approved software identifiers per legally relevant component (P2/U2),
the approved sensor identifiers (4.1 pairing), the legally relevant parameters of
the gas-meter profile (base conditions, Z ratio, max. transmission delay T7) and
known-answer tests the mother unit uses to check the remote processing (4.4).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from security_module.errors import SignatureInvalid
from security_module.signing import CONTEXT_TYPE_APPROVAL, sign, verify

__all__ = [
    "GasMeterParameters",
    "KnownAnswerTest",
    "SignedTypeApproval",
    "TypeApproval",
    "convert_to_base",
    "default_known_answer_tests",
    "load_type_approval",
    "sign_type_approval",
]


class GasMeterParameters(BaseModel):
    """Legally relevant parameters of the gas meter with volume conversion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_pressure_kpa: float = Field(101.325, gt=0)  # pb
    base_temperature_k: float = Field(288.15, gt=0)  # Tb
    z_ratio: float = Field(1.0, gt=0)  # Zb/Z
    max_transmission_delay_ms: int = Field(2000, gt=0)  # T7
    version: str = "1"


def convert_to_base(
    vm_m3: float, pressure_kpa: float, temperature_k: float, params: GasMeterParameters
) -> float:
    """Vb = Vm · (p/pb) · (Tb/T) · (Zb/Z) - the reference used for known answers."""
    return (
        vm_m3
        * (pressure_kpa / params.base_pressure_kpa)
        * (params.base_temperature_k / temperature_k)
        * params.z_ratio
    )


class KnownAnswerTest(BaseModel):
    """One conversion test case: inputs, expected Vb and the absolute tolerance (m³)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    vm_m3: float
    pressure_kpa: float = Field(gt=0)
    temperature_k: float = Field(gt=0)
    expected_vb_m3: float
    tolerance_m3: float = Field(1e-6, ge=0)

    def check(self, vb_m3: float) -> bool:
        return math.isfinite(vb_m3) and abs(vb_m3 - self.expected_vb_m3) <= self.tolerance_m3


def default_known_answer_tests(params: GasMeterParameters) -> list[KnownAnswerTest]:
    cases = [
        ("base-conditions", 100.0, params.base_pressure_kpa, params.base_temperature_k),
        ("high-pressure-cold", 1000.0, 200.0, 273.15),
        ("low-pressure-warm", 12345.678, 95.0, 303.15),
        ("zero-volume", 0.0, 150.0, 280.0),
        ("large-index", 99_999_999.999, 500.0, 250.0),
    ]
    return [
        KnownAnswerTest(
            name=name, vm_m3=vm, pressure_kpa=p, temperature_k=t,
            expected_vb_m3=convert_to_base(vm, p, t, params),
            tolerance_m3=1e-6 * max(1.0, abs(convert_to_base(vm, p, t, params))),
        )
        for name, vm, p, t in cases
    ]


class TypeApproval(BaseModel):
    """The approved type (signed by the notified body; see SignedTypeApproval)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    approval_id: str
    instrument_type: str = "gas-meter/remote-volume-conversion"
    instrument_id: str
    issued_at: dt.datetime
    issuer: str = "notified-body"
    # kind -> approved full hex identifiers (several versions may be approved)
    software_ids: dict[str, list[str]]
    approved_sensor_ids: list[str]
    parameters: GasMeterParameters
    known_answer_tests: list[KnownAnswerTest]

    @field_validator("software_ids")
    @classmethod
    def _hex_ids(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for kind, ids in v.items():
            for sid in ids:
                if len(sid) != 64 or any(c not in "0123456789abcdef" for c in sid):
                    raise ValueError(f"software id for {kind} is not 64 lowercase hex chars")
        return v


class SignedTypeApproval(BaseModel):
    """On-disk form: ``{"approval": {...}, "signature": "<base64 Ed25519>"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval: TypeApproval
    signature: str  # base64 of the 64-byte Ed25519 signature

    def verify(self, notified_body_key: Ed25519PublicKey) -> TypeApproval:
        try:
            sig = base64.b64decode(self.signature, validate=True)
        except ValueError as e:
            raise SignatureInvalid("type approval signature is not base64") from e
        verify(self.approval, sig, notified_body_key, CONTEXT_TYPE_APPROVAL,
               signer="notified-body")
        return self.approval


def sign_type_approval(approval: TypeApproval, key: Ed25519PrivateKey) -> SignedTypeApproval:
    sig = sign(approval, key, CONTEXT_TYPE_APPROVAL)
    return SignedTypeApproval(approval=approval, signature=base64.b64encode(sig).decode())


def load_type_approval(path: Path, notified_body_key: Ed25519PublicKey) -> TypeApproval:
    """Parse and verify ``type_approval.json``; any edit raises SignatureInvalid."""
    try:
        signed = SignedTypeApproval.model_validate_json(path.read_bytes())
    except ValidationError as e:
        raise SignatureInvalid("type approval does not parse", path=str(path)) from e
    except OSError as e:
        raise SignatureInvalid(f"cannot read type approval: {e}", path=str(path)) from e
    try:
        return signed.verify(notified_body_key)
    except SignatureInvalid as e:
        raise SignatureInvalid("type approval signature does not verify (edited?)",
                               path=str(path)) from e
