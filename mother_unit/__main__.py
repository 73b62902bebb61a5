"""``python -m mother_unit``: the instrument (WELMEC 7.3 mother unit)."""

from __future__ import annotations

import sys
from typing import Literal

import structlog
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mother_unit.app import MotherUnit
from mother_unit.commands import non_relevant_issuers
from mother_unit.core import Core, Limits
from mother_unit.evidence import Evidence
from mother_unit.processing_check import load_processing_trust
from mother_unit.records_log import RECORDS_LOG_FILE, RecordsLog, records_origin
from mother_unit.storage_link import load_storage_trust
from security_module.boot_counter import BootCounter
from security_module.checkpoint import NoteSigner
from security_module.errors import ProvisioningError, SecurityError
from security_module.logbook import Logbook
from security_module.pairing_store import PairingStore
from security_module.provisioning import Provisioned
from security_module.software_id import compute_software_id
from wire.client import MqttLink
from wire.logs import configure_logging
from wire.process import run_component
from wire.settings import ComponentSettings, load_settings
from wire.topics import Topics

log = structlog.get_logger()


class MotherUnitSettings(ComponentSettings):
    model_config = SettingsConfigDict(cli_prog_name="python -m mother_unit")

    component_id: str = Field(
        "mother-unit", description="this component's id (its MQTT user name too)"
    )
    record_buffer: int = Field(
        20_000, gt=0, description="records held until the store acknowledges (L8)"
    )
    storage_timeout_s: float = Field(
        2.0, gt=0, description="resend records not acknowledged within this"
    )
    t7_policy: Literal["flag", "reject"] = Field(
        "flag", description="T7: samples later than the approved maximum are flagged or rejected"
    )
    processing_timeout_s: float = Field(
        2.0, gt=0, description="resend conversions not answered within this"
    )
    kat_period_s: float = Field(
        30.0, gt=0, description="run the fixed test cases of the remote processing this often"
    )


def build(settings: MotherUnitSettings) -> MotherUnit:
    """Load provisioned material and open the logbook; raises SecurityError with a clear message."""
    material = Provisioned(settings.dir)
    identity = material.identity(settings.component_id)
    approval = material.type_approval
    if approval.instrument_id != settings.instrument:
        raise ProvisioningError(
            f"{settings.dir} is provisioned for instrument {approval.instrument_id}, "
            f"not {settings.instrument}: pass --instrument {approval.instrument_id}",
        )
    software_id = compute_software_id("mother_unit")
    link = MqttLink(
        broker=settings.broker_address,
        client_id=settings.component_id,
        topics=Topics(settings.instrument),
        component="mother_unit",
        software_id=software_id.full,
        heartbeat_s=settings.heartbeat_s,
    )
    limits = Limits(
        record_buffer=settings.record_buffer,
        storage_timeout_s=settings.storage_timeout_s,
        processing_timeout_s=settings.processing_timeout_s,
        kat_period_s=settings.kat_period_s,
        t7_max_ms=float(approval.parameters.max_transmission_delay_ms),
        t7_reject=settings.t7_policy == "reject",
    )
    core = Core(link, limits)
    logbook = Logbook(settings.data_dir, origin=material.logbook_origin)
    signer = NoteSigner(f"{settings.instrument}/{settings.component_id}", identity.private_key)
    return MotherUnit(
        core,
        Evidence(core, logbook, signer),
        approval,
        software_id.full,
        identity=identity,
        va_public_key=material.verification_authority_public_key,
        pairings=PairingStore(settings.data_dir, material.passphrase),
        boot=BootCounter(settings.data_dir / "boot").next_boot(),
        records_log=RecordsLog.open(
            signer,
            records_origin(settings.instrument),
            settings.data_dir / RECORDS_LOG_FILE,
            checkpoint_every=limits.max_batch,
        ),
        # T4: only the provisioned processing components, certificates checked against the CA.
        processing_trust=load_processing_trust(material),
        # L1: only acknowledgements signed by a provisioned store release samples.
        storage_trust=load_storage_trust(material),
        # S: the protective interface verifies the portal's signed commands.
        non_relevant_issuers=non_relevant_issuers(material),
    )


def cli(argv: list[str]) -> int:
    settings = load_settings(MotherUnitSettings, argv)
    configure_logging(settings.component_id, settings.log_dir, settings.run_id, settings.log_level)
    try:
        mother_unit = build(settings)
    except SecurityError as e:
        log.error("cannot_start", error=str(e))
        print(f"mother unit cannot start: {e}", file=sys.stderr)
        return 2
    return run_component(mother_unit.run())


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
