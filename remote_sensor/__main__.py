"""``python -m remote_sensor``: a paired digital sensor (WELMEC 7.3 §4.1)."""

from __future__ import annotations

import asyncio
import sys

import structlog
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from remote_sensor.outbox import Outbox
from remote_sensor.pairing_link import SensorPairingLink
from remote_sensor.profiles import GasMeterProfile
from remote_sensor.service import SensorService
from security_module.boot_counter import BootCounter
from security_module.errors import SecurityError
from security_module.pairing_store import PairingStore
from security_module.provisioning import Provisioned
from security_module.software_id import compute_software_id
from wire.client import MqttLink
from wire.logs import configure_logging
from wire.process import run_component
from wire.settings import ComponentSettings, load_settings
from wire.topics import Topics

log = structlog.get_logger()


class SensorSettings(ComponentSettings):
    model_config = SettingsConfigDict(cli_prog_name="python -m remote_sensor")

    component_id: str = Field(
        "sensor-1", description="the sensor slot it reports on (topic id, MQTT user)"
    )
    identity: str = Field(
        "",
        description="provisioned device whose key and certificate it uses; default: component id",
    )
    mother_unit: str = Field(
        "mother-unit", description="component id of the mother unit it reports to"
    )
    rate_hz: float = Field(1.0, gt=0, le=10_000, description="samples per second")
    location: str = Field(
        "lab", description="where the sensor is installed (4.1: identifiable location)"
    )
    outbox: int = Field(10_000, gt=0, description="unacknowledged samples kept for retransmission")
    send_unpaired: bool = Field(
        False,
        description="publish samples while unpaired, as a swapped-in unit would (attack scenarios)",
    )


class Sensor:
    def __init__(self, settings: SensorSettings) -> None:
        device = settings.identity or settings.component_id
        material = Provisioned(settings.dir)
        identity = material.identity(device)
        data_dir = settings.dir / device
        self.link = MqttLink(
            broker=settings.broker_address,
            client_id=settings.component_id,
            topics=Topics(settings.instrument),
            component="remote_sensor",
            software_id=compute_software_id("remote_sensor").full,
            heartbeat_s=settings.heartbeat_s,
        )
        self.link.detail.update(location=settings.location, device=device)
        self.service = SensorService(
            self.link,
            slot=settings.component_id,
            device_id=device,
            recipient=settings.mother_unit,
            boot_counter=BootCounter(data_dir / "boot"),
            rate_hz=settings.rate_hz,
            profile=GasMeterProfile(),
            outbox=Outbox(settings.outbox, journal=data_dir / "outbox.journal"),
            send_unpaired=settings.send_unpaired,
        )
        store = PairingStore(data_dir, material.passphrase)
        self.pairing = SensorPairingLink(
            self.link,
            slot=settings.component_id,
            identity=identity,
            instrument_id=settings.instrument,
            mother_unit_id=settings.mother_unit,
            store=store,
            on_paired=self.service.paired,
        )
        record = store.find(settings.mother_unit)
        if record is not None:
            self.service.paired(record)
        if self.service.outbox.recovered:
            log.info("outbox_recovered", samples=self.service.outbox.recovered)
            # Still unacknowledged from before the restart: offer them again (T1).
            self.service.resend_pending()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.link.run(), name="link")
            tg.create_task(self.service.sample_loop(), name="sample")
            tg.create_task(self.service.send_loop(), name="send")
            tg.create_task(self.pairing.hello_loop(), name="pairing")


def cli(argv: list[str]) -> int:
    settings = load_settings(SensorSettings, argv)
    configure_logging(settings.component_id, settings.log_dir, settings.run_id, settings.log_level)
    try:
        sensor = Sensor(settings)
    except SecurityError as e:
        log.error("cannot_start", error=str(e))
        print(f"sensor cannot start: {e}", file=sys.stderr)
        return 2
    return run_component(sensor.run())


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
