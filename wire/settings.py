"""Settings every process reads the same way: flags first, then ``TESTBED_*`` variables.

docker-compose sets environment variables, a laptop passes flags; both end up
here, so a component never has a second way to be configured.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
# Issue 10: each MQTT user's password, 0600, in its own directory of the testbed dir
# (written by `testbed provision`; docker-compose mounts the same directory).
MQTT_PASSWORD_FILE = "mqtt_password"  # noqa: S105 - a file name, not a password


class BrokerAddress(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"broker URL must start with mqtt://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"broker URL has no host: {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def url(self, *, with_credentials: bool = False) -> str:
        auth = ""
        if with_credentials and self.username:
            auth = self.username + (f":{self.password}" if self.password else "") + "@"
        return f"mqtt://{auth}{self.host}:{self.port}"

    def with_password_from(self, dir: Path, user: str) -> BrokerAddress:
        """These credentials, or ``user`` with the password in DIR/<user>/mqtt_password.

        A password in the URL wins; without the file (an anonymous broker) nothing changes.
        """
        if self.password is not None:
            return self
        name = self.username or user
        try:
            password = (dir / name / MQTT_PASSWORD_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return self
        return self.model_copy(update={"username": name, "password": password})


class ComponentSettings(BaseSettings):
    """Settings shared by all components; each ``__main__`` adds its defaults."""

    model_config = SettingsConfigDict(
        env_prefix="TESTBED_",
        cli_prog_name="component",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        frozen=True,
        extra="ignore",
    )

    broker: str = Field(DEFAULT_BROKER, description="broker URL, mqtt://[user:pass@]host:port")
    instrument: str = Field("gm-0001", description="instrument id (topic root mi/<instrument>)")
    component_id: str = Field("", description="this component's id (its MQTT user name too)")
    dir: Path = Field(
        Path("run"), description="testbed directory: provisioned material, data, logs"
    )
    heartbeat_s: float = Field(1.0, gt=0, description="status heartbeat interval, seconds")
    run_id: str = Field("", description="names this run's log files; empty: one per start")
    log_level: str = Field("info", description="debug, info, warning or error")
    # A_RTC scenarios only: a device whose real-time clock is wrong. 0 in service.
    clock_offset_s: float = Field(
        0.0,
        allow_inf_nan=False,
        description="simulated real-time-clock error, seconds (A_RTC scenarios); 0 in service",
    )

    @field_validator("broker")
    @classmethod
    def _valid_broker(cls, v: str) -> str:
        BrokerAddress.parse(v)
        return v

    @property
    def broker_address(self) -> BrokerAddress:
        # The component id is the MQTT user name; the broker's ACL is keyed on it.
        return BrokerAddress.parse(self.broker).with_password_from(self.dir, self.component_id)

    @property
    def data_dir(self) -> Path:
        """This component's own directory inside the testbed directory."""
        return self.dir / self.component_id

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"


S = TypeVar("S", bound=ComponentSettings)


def load_settings(cls: type[S], argv: list[str] | None = None) -> S:
    """Parse flags (``argv``) over environment variables into ``cls``."""
    settings = CliApp.run(cls, cli_args=argv if argv is not None else [], cli_exit_on_error=True)
    if settings.clock_offset_s:
        shift_wall_clock(settings.clock_offset_s)
    return settings


def shift_wall_clock(offset_s: float) -> None:
    """Make this process's real-time clock ``offset_s`` wrong (A_RTC attack scenarios).

    Emulates a device whose RTC was set wrong: ``time.time()`` - the wall clock every
    component stamps samples, results, records and indications with - runs
    ``offset_s`` ahead (negative: behind). Monotonic time (timeouts, heartbeats) is
    not affected, nor is ``datetime.now()`` (certificate and authorization validity,
    logbook entry times), so the error shows where a wrong RTC does harm to data.
    """
    real = time.time

    def wrong() -> float:
        return real() + offset_s

    time.time = wrong


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
