"""Legally relevant processing: gas volume conversion to base conditions.

    Vb = Vm · (p / pb) · (Tb / T) · (Zb / Z)

Vm and Vb in m³, p and pb in kPa (absolute), T and Tb in K. The base
conditions and the compressibility ratio Zb/Z are legally relevant parameters
that come from the verified type approval, never from the request
(A_SW_RUNTIME_CONFIGFILES).

P2/U2: this module is part of the remote processing's software identifier
(``security_module.software_id``): editing any line of it changes the
identifier that every signed result reports, and the mother unit sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

from security_module.type_approval import GasMeterParameters


@dataclass(frozen=True)
class ConversionParameters:
    """The legally relevant parameters in the units the formula uses."""

    pb_kpa: float
    tb_k: float
    zb_over_z: float
    version: str  # reported in every result; the mother unit compares it with the approval

    @classmethod
    def from_approval(cls, parameters: GasMeterParameters) -> ConversionParameters:
        return cls(
            pb_kpa=parameters.base_pressure_kpa,
            tb_k=parameters.base_temperature_k,
            zb_over_z=parameters.z_ratio,
            version=parameters.version,
        )


def convert(vm: float, p: float, t: float, params: ConversionParameters) -> float:
    """Volume at base conditions for a volume ``vm`` measured at ``p``, ``t``."""
    return vm * (p / params.pb_kpa) * (params.tb_k / t) * params.zb_over_z
