"""``python -m remote_processing``: legally relevant processing in the cloud (WELMEC 7.3 §4.4).

At start it loads, from the provisioned testbed directory, its identity (key
and certificate from the manufacturer CA) and the type approval (verified
against the notified body's key); the legally relevant parameters come from
the approval only. Missing or invalid material: a clear message, exit code 2.
"""

from __future__ import annotations

import sys
from typing import Final

import structlog
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from remote_processing.conversion import ConversionParameters
from remote_processing.service import ProcessingService
from security_module.errors import ProvisioningError, SecurityError
from security_module.identity import DeviceIdentity
from security_module.provisioning import Provisioned
from security_module.software_id import SoftwareIdentifier, compute_software_id
from wire.client import MqttLink
from wire.logs import configure_logging
from wire.process import run_component
from wire.settings import ComponentSettings, load_settings
from wire.topics import Topics

log = structlog.get_logger()

EXIT_NO_MATERIAL = 2
KIND: Final = "remote_processing"


class ProcessingSettings(ComponentSettings):
    model_config = SettingsConfigDict(cli_prog_name="python -m remote_processing")

    component_id: str = Field(
        "processing", description="this component's id (its MQTT user name too)"
    )


def load(settings: ProcessingSettings) -> tuple[DeviceIdentity, ConversionParameters]:
    """Identity and approved parameters; raises SecurityError with a clear message."""
    material = Provisioned(settings.dir)
    try:
        identity = material.identity(settings.component_id)
    except ValueError as e:  # role_of: a device name that is no component of ours
        raise ProvisioningError(str(e), device=settings.component_id) from e
    if identity.role != KIND:
        raise ProvisioningError(
            f"device {settings.component_id!r} is a {identity.role}, not a {KIND}",
            device=settings.component_id,
        )
    approval = material.type_approval  # verified against the notified body's key
    if approval.instrument_id != settings.instrument:
        raise ProvisioningError(
            f"{settings.dir} is provisioned for instrument {approval.instrument_id}, "
            f"not {settings.instrument}: pass --instrument {approval.instrument_id}",
        )
    return identity, ConversionParameters.from_approval(approval.parameters)


async def main(
    settings: ProcessingSettings,
    identity: DeviceIdentity,
    params: ConversionParameters,
    software_id: SoftwareIdentifier,
) -> None:
    link = MqttLink(
        broker=settings.broker_address,
        client_id=settings.component_id,
        topics=Topics(settings.instrument),
        component=KIND,
        software_id=software_id.full,
        heartbeat_s=settings.heartbeat_s,
    )
    link.detail.update(parameter_version=params.version)
    ProcessingService(link, params, identity, software_id.full)
    await link.run()


def cli(argv: list[str]) -> int:
    settings = load_settings(ProcessingSettings, argv)
    configure_logging(settings.component_id, settings.log_dir, settings.run_id, settings.log_level)
    try:
        identity, params = load(settings)
    except SecurityError as e:
        log.error("cannot_start", error=str(e))
        print(f"remote processing cannot start: {e}", file=sys.stderr)
        return EXIT_NO_MATERIAL
    # P2/U2: computed from the bytes of the code that runs, reported in every signed result.
    software_id = compute_software_id(KIND)
    log.info(
        "started",
        software_id=software_id.full,
        parameter_version=params.version,
        component_id=identity.device_id,
    )
    return run_component(main(settings, identity, params, software_id))


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
