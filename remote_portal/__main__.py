"""``python -m remote_portal``: the remote portal (WELMEC 7.3 §4.3, legally non-relevant).

    python -m remote_portal --dir DIR --broker mqtt://127.0.0.1:PORT --http-port 8080
"""

from __future__ import annotations

import os
import sys

import structlog
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from remote_portal.service import Portal, portal_software_dir
from remote_portal.twin import TwinType
from remote_portal.view import InstrumentView
from security_module.errors import ProvisioningError, SecurityError
from security_module.provisioning import Provisioned
from security_module.software_id import software_id_of_dirs
from wire.client import MqttLink
from wire.logs import configure_logging
from wire.process import run_component
from wire.settings import ComponentSettings, load_settings
from wire.topics import Topics

log = structlog.get_logger()

# A_WEB_DOS: the portal yields the CPU to the instrument's processes under load.
NICE_INCREMENT = 10


class PortalSettings(ComponentSettings):
    model_config = SettingsConfigDict(cli_prog_name="python -m remote_portal")

    component_id: str = Field("portal", description="this component's id (its MQTT user name too)")
    http_host: str = Field("127.0.0.1", description="address the web portal listens on")
    http_port: int = Field(8080, ge=0, le=65535, description="port the web portal listens on")
    nice: int = Field(NICE_INCREMENT, ge=0, le=19, description="lower the CPU priority by this")


def build(settings: PortalSettings) -> Portal:
    material = Provisioned(settings.dir)
    if material.instrument_id != settings.instrument:
        raise ProvisioningError(
            f"{settings.dir} is provisioned for instrument {material.instrument_id}, "
            f"not {settings.instrument}: pass --instrument {material.instrument_id}",
        )
    # The portal's own identity: it signs only the non-relevant commands (S).
    identity = material.identity(settings.component_id)
    if identity.role != "remote_portal":
        raise ProvisioningError(f"{settings.component_id} is not a portal identity")
    topics = Topics(settings.instrument)
    software_id = software_id_of_dirs([("remote_portal", portal_software_dir())])
    link = MqttLink(
        broker=settings.broker_address,
        client_id=settings.component_id,
        topics=topics,
        component="remote_portal",
        software_id=software_id.full,
        heartbeat_s=settings.heartbeat_s,
        clean_session=True,  # passive: the broker keeps no backlog for the portal
    )
    view = InstrumentView(topics, material.type_approval, material.logbook_verifier())
    return Portal(
        link, view, identity, TwinType.load(material), settings.http_host, settings.http_port
    )


def cli(argv: list[str]) -> int:
    settings = load_settings(PortalSettings, argv)
    configure_logging(settings.component_id, settings.log_dir, settings.run_id, settings.log_level)
    if settings.nice:
        os.nice(settings.nice)
    try:
        portal = build(settings)
    except (SecurityError, KeyError, ValueError) as e:
        log.error("cannot_start", error=str(e))
        print(f"portal cannot start: {e}", file=sys.stderr)
        return 2
    print(f"portal: {portal.url}", flush=True)
    return run_component(portal.run())


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
