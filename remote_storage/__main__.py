"""``python -m remote_storage``: the remote long-term store (WELMEC 7.3 §4.2)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from remote_storage.service import StorageService
from remote_storage.store import SqliteStore
from security_module.provisioning import Provisioned
from security_module.software_id import compute_software_id
from wire.client import MqttLink
from wire.logs import configure_logging
from wire.process import run_component
from wire.settings import ComponentSettings, load_settings
from wire.topics import Topics


class StorageSettings(ComponentSettings):
    model_config = SettingsConfigDict(cli_prog_name="python -m remote_storage")

    component_id: str = Field("storage", description="this component's id (its MQTT user name too)")
    db: str = Field("", description="SQLite file; default DIR/<component-id>/records.sqlite")


async def main(settings: StorageSettings) -> None:
    path = Path(settings.db) if settings.db else settings.data_dir / "records.sqlite"
    identity = Provisioned(settings.dir).identity(settings.component_id)
    store = SqliteStore(path)
    link = MqttLink(
        broker=settings.broker_address,
        client_id=settings.component_id,
        topics=Topics(settings.instrument),
        component="remote_storage",
        software_id=compute_software_id("remote_storage").full,
        heartbeat_s=settings.heartbeat_s,
    )
    StorageService(link, store, identity.private_key)
    try:
        await link.run()
    finally:
        store.close()


def cli(argv: list[str]) -> int:
    settings = load_settings(StorageSettings, argv)
    configure_logging(settings.component_id, settings.log_dir, settings.run_id, settings.log_level)
    return run_component(main(settings))


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
