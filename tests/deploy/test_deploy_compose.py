"""Issue 10: docker-compose.yml proven right without a Docker engine.

1. It validates against the Compose Specification JSON schema — the copy vendored
   by the ``check-jsonschema`` package (``check_jsonschema/builtin_schemas/vendor/
   compose-spec.json``, from github.com/compose-spec/compose-spec ``schema/``; the
   package version pins the schema version).
2. :class:`NativeCompose` READS the file and runs every service of the default
   profile natively, in ``depends_on`` order and honouring its conditions:
   the image's ``python``/``testbed`` become this interpreter, each named volume
   becomes a directory under ``tmp_path`` mounted where the file says, and the
   ``mosquitto`` service becomes a real Mosquitto started with the configuration
   the ``provision`` service generated (only its listener moves to a free loopback
   port, and it keeps our user instead of dropping to "mosquitto"). Health checks
   run natively too. The instrument must then work: samples accepted by the mother
   unit and records stored, with every component on its own credentials.
3. The README's "Run with Docker" section names what the file has.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from testbed.broker import free_port, mosquitto_path
from testbed.broker_config import OBSERVER, tool_address
from testbed.commands.healthcheck import retained_status
from testbed.testing import kill_group, popen_in_group, port_listening, wait_for_port
from wire.settings import BrokerAddress
from wire.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CONTAINER_PORT = 1883


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


def compose_schema() -> dict[str, Any]:
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


def schema_errors(doc: Mapping[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


# -- 1. the schema -------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(load_compose()) == []


def test_the_schema_check_is_strict_enough_to_catch_a_typo() -> None:
    """Negative control: the validation would notice a misspelt key."""
    doc = load_compose()
    doc["services"]["storage"]["depends_on"]["mosquitto"]["condtion"] = "service_healthy"
    doc["services"]["sensor"]["healthcheck"] = {"tset": ["CMD", "true"]}
    assert len(schema_errors(doc)) >= 2


def test_services_images_volumes_and_order_are_the_ones_the_issue_asks_for() -> None:
    services = load_compose()["services"]
    assert {"mosquitto", "provision", "mother-unit", "sensor", "storage", "processing",
            "scenario"} <= set(services)
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert services["mosquitto"]["depends_on"]["provision"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("storage", "processing"):
        assert services[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    for name in ("storage", "processing", "mother-unit", "sensor"):
        assert services[name]["build"] == "."
        assert "healthcheck" in services[name]
    assert any(v.startswith("storage-data:") for v in services["storage"]["volumes"])
    assert services["scenario"]["profiles"] == ["scenario"]
    assert services["scenario"]["entrypoint"][:3] == ["testbed", "scenario", "run"]
    assert "--broker" in services["scenario"]["entrypoint"]
    # No password in the file: components read DIR/<component-id>/mqtt_password.
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            assert "PASS" not in key.upper(), (name, key)
            assert "@" not in str(value), (name, key)


def test_readme_docker_section_matches_the_compose_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run with Docker", 1)[1].split("\n## ", 1)[0]
    for service in load_compose()["services"]:
        assert f"`{service}`" in section, f"README's Docker section does not name {service}"
    for command in ("docker compose up", "docker compose run --rm scenario"):
        assert command in section


# -- 2. the native harness ------------------------------------------------------------------


@dataclass
class NativeCompose:
    """Runs the services of docker-compose.yml as local processes (see the module doc)."""

    compose: dict[str, Any]
    root: Path
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return {name: s for name, s in self.compose["services"].items()
                if not s.get("profiles")}

    def volume_dir(self, name: str) -> Path:
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def mounts(self, service: str) -> list[tuple[str, Path]]:
        """(container path, host dir), longest container path first."""
        out = []
        for spec in self.services[service].get("volumes", []):
            source, target = str(spec).split(":")[:2]
            assert source in self.compose["volumes"], f"{service}: bind mount {spec}"
            out.append((target, self.volume_dir(source)))
        return sorted(out, key=lambda m: -len(m[0]))

    def map(self, service: str, text: str) -> str:
        """Container paths and the broker's service address, as seen from this host."""
        for target, host in self.mounts(service):
            text = re.sub(rf"(?<![\w/]){re.escape(target)}(?=/|$|\s|\")", str(host), text)
        text = text.replace(f"mosquitto:{CONTAINER_PORT}", f"127.0.0.1:{self.port}")
        if service == "mosquitto":
            text = text.replace(f"-p {CONTAINER_PORT}", f"-p {self.port}")
        return text

    def argv(self, service: str, words: list[str]) -> list[str]:
        words = [self.map(service, w) for w in words]
        head, rest = words[0], words[1:]
        if head == "python":
            return [sys.executable, *rest]
        if head == "testbed":
            return [sys.executable, "-m", "testbed", *rest]
        if head == "mosquitto":
            return [self.native_mosquitto(rest)]
        return words

    def native_mosquitto(self, args: list[str]) -> str:
        """Write the generated config with the listener mapped; returns the binary."""
        config = Path(args[args.index("-c") + 1])
        text = config.read_text(encoding="utf-8")
        assert f"listener {CONTAINER_PORT}\n" in text
        native = text.replace(f"listener {CONTAINER_PORT}\n",
                              f"listener {self.port} 127.0.0.1\n")
        # Mosquitto as root would switch to user "mosquitto" (the image's 1883), which
        # does not own these files here; the provision service chowned them for that user.
        native += f"user {getpass.getuser()}\n"
        self.native_config = self.root / "mosquitto.native.conf"
        self.native_config.write_text(native, encoding="utf-8")
        binary = mosquitto_path()
        assert binary is not None
        return binary

    def env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESTBED_")}
        for key, value in (self.services[service].get("environment") or {}).items():
            env[key] = self.map(service, str(value))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def order(self) -> list[str]:
        done: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            for dep in self.services[name].get("depends_on", {}):
                visit(dep)
            done.append(name)

        for name in self.services:
            visit(name)
        return done

    def start(self, service: str) -> None:
        spec = self.services[service]
        words = [*spec.get("entrypoint", []), *spec.get("command", [])]
        argv = self.argv(service, words)
        if service == "mosquitto":
            argv = [argv[0], "-c", str(self.native_config)]
        log = self.root / "logs" / f"{service}.log"
        self.processes[service] = popen_in_group(argv, log, env=self.env(service))
        if service == "mosquitto":
            wait_for_port(self.port, self.processes[service], log)

    def healthy(self, service: str) -> bool:
        test = self.services[service]["healthcheck"]["test"]
        if test[0] == "CMD-SHELL":
            argv = ["sh", "-c", self.map(service, test[1])]
        else:
            assert test[0] == "CMD"
            argv = self.argv(service, list(test[1:]))
        result = subprocess.run(argv, env=self.env(service), capture_output=True, timeout=30,
                                check=False)
        return result.returncode == 0

    def wait_for(self, service: str, condition: str, deadline_s: float = 60.0) -> None:
        end = time.monotonic() + deadline_s
        process = self.processes[service]
        while True:
            if condition == "service_completed_successfully":
                if process.poll() is not None:
                    assert process.returncode == 0, f"{service} failed:\n{self.tail(service)}"
                    return
            else:
                assert process.poll() is None, f"{service} exited:\n{self.tail(service)}"
                if condition == "service_started" or self.healthy(service):
                    return
            assert time.monotonic() < end, f"{service} not {condition}:\n{self.tail(service)}"
            time.sleep(0.3)  # another process's state: nothing to await

    def tail(self, service: str) -> str:
        log = self.root / "logs" / f"{service}.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def up(self) -> None:
        for service in self.order():
            for dep, cond in self.services[service].get("depends_on", {}).items():
                self.wait_for(dep, cond["condition"])
            self.start(service)

    def close(self) -> None:
        for service in reversed(list(self.processes)):
            process = self.processes[service]
            if process.poll() is None:
                kill_group(process)
        end = time.monotonic() + 5
        while port_listening(self.port) and time.monotonic() < end:
            time.sleep(0.05)
        assert not port_listening(self.port)


@pytest.fixture
def native_compose(tmp_path: Path) -> Iterator[NativeCompose]:
    harness = NativeCompose(load_compose(), tmp_path)
    try:
        yield harness
    finally:
        harness.close()


@pytest.mark.mosquitto
@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_compose_services_run_natively_bring_up_a_working_instrument(
    native_compose: NativeCompose,
) -> None:
    await asyncio.to_thread(native_compose.up)
    # The one-shot services did their job: provisioned (and handed the broker its
    # files), paired the sensor (the officer's credentials).
    native_compose.wait_for("pair", "service_completed_successfully")
    dir = native_compose.volume_dir("testbed")
    assert "allow_anonymous false" in (dir / "broker" / "mosquitto.conf").read_text()
    address = tool_address(dir, BrokerAddress(host="127.0.0.1", port=native_compose.port),
                           OBSERVER)
    end = time.monotonic() + 60
    topics = Topics("gm-0001")
    while True:
        # One retained message per component: bounded, however busy the broker is.
        mu = await retained_status(address, topics, "mother-unit", 5.0)
        st = await retained_status(address, topics, "storage", 5.0)
        if (mu is not None and mu.counters.get("accepted", 0) > 0
                and st is not None and st.counters.get("records_stored", 0) > 0):
            break
        for service in ("mosquitto", "storage", "processing", "mother-unit", "sensor"):
            assert native_compose.processes[service].poll() is None, native_compose.tail(service)
        assert time.monotonic() < end, f"no end-to-end measurement: {mu}, {st}"
        await asyncio.sleep(0.5)
    # Every component connected as itself (the broker's log names user and client id).
    log = (native_compose.root / "logs" / "mosquitto.log").read_text(errors="replace")
    for cid in ("storage", "processing", "mother-unit", "sensor-1"):
        assert f"as {cid} (" in log
        assert f"u'{cid}'" in log
    # The store is in its own volume, not in the shared one.
    assert (native_compose.volume_dir("storage-data") / "records.sqlite").exists()
