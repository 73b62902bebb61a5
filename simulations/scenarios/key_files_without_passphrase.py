"""A_CRYPTO_RET: key files (of a sensor, of the processing) copied off without the passphrase."""

from __future__ import annotations

import shutil
import time

from simulations.model import TestbedSpec
from simulations.offline import start_and_watch
from simulations.registry import scenario
from simulations.trial import Trial

EXIT_CANNOT_START = 2
EXPECTATIONS = {
    "no_passphrase_refused": "a component started from the copied files without the "
    "passphrase does not start (exit 2, key file error)",
    "guessed_passphrase_refused": "with a guessed passphrase it does not start either",
    "keys_encrypted": "the copied private key holds no plaintext key",
}


@scenario(
    id="key-files-without-passphrase",
    title="Key files copied without the passphrase are useless",
    vectors=["A_CRYPTO_RET"],
    requirements=["L5"],
    architectures=["4.1", "4.2"],
    testbed=TestbedSpec(start=False),
    expectations=EXPECTATIONS,
    budget_s=20.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      the attacker copies what is on sensor-1's device - its key.pem, cert.pem,
            pairings.json - and the public material (CA certificate, type approval,
            manifest) to a machine of its own; the passphrase is not on the device.
    +1 s    it starts a sensor from the copy: refused, the key file cannot be read.
    +2 s    again with a guessed passphrase: refused.
            The copied files hold no plaintext key (PKCS#8 encrypted; pairing keys
            encrypted under scrypt).
    """
    await start_from_copied_keys(t, "remote_sensor", "sensor-1")


@scenario(
    id="processing-key-files-without-passphrase",
    title="The cloud processing's key files copied without the passphrase are useless",
    vectors=["A_CRYPTO_RET"],
    requirements=["T5"],
    architectures=["4.4"],
    testbed=TestbedSpec(start=False),
    expectations=EXPECTATIONS,
    budget_s=20.0,
)
async def attack_processing(t: Trial) -> None:
    """Timeline.

    t0      the attacker copies the cloud host's key.pem and cert.pem of the legally
            relevant processing, and the public material, to a machine of its own; the
            passphrase is not stored with them. With the key it could sign conversion
            results the mother unit would take as the certified processing's (T5, 4.4).
    +1 s    it starts a processing service from the copy: refused, the key file cannot
            be read.
    +2 s    again with a guessed passphrase: refused.
            The copied private key is PKCS#8 encrypted: no plaintext key in the files.
    """
    await start_from_copied_keys(t, "remote_processing", "processing")


async def start_from_copied_keys(t: Trial, package: str, device: str) -> None:
    """Copy ``device``'s key files and the public material; start ``package`` from them."""
    stolen = t.dir.parent / "stolen"
    for rel in (
        "manifest.json",
        "type_approval.json",
        "manufacturer-ca/ca.crt",
        "notified-body/public.pem",
        "verification-authority/public.pem",
        f"{device}/key.pem",
        f"{device}/cert.pem",
    ):
        (stolen / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(t.dir / rel, stolen / rel)
    t.attack_started("key files copied")
    env = {"TESTBED_KEY_PASSPHRASE": "", "TESTBED_KEY_PASSPHRASE_FILE": ""}
    logs = t.dir / "logs" / "offline"
    plain = await start_and_watch(package, device, stolen, logs / "no-passphrase.log", env=env)
    if plain.returncode == EXIT_CANNOT_START:
        t.detected(time.monotonic(), "refused: " + (plain.output.strip().splitlines() or [""])[-1])
    t.expect(
        "no_passphrase_refused",
        measured={"exit": plain.returncode, "output": plain.output[-240:]},
        held=plain.returncode == EXIT_CANNOT_START,
        expected="exit 2",
    )
    guessed = await start_and_watch(
        package, device, stolen, logs / "guessed.log",
        env={"TESTBED_KEY_PASSPHRASE": "welmec-testbed"},
    )
    t.expect(
        "guessed_passphrase_refused",
        measured={"exit": guessed.returncode, "output": guessed.output[-240:]},
        held=guessed.returncode == EXIT_CANNOT_START,
        expected="exit 2",
    )
    key = (stolen / device / "key.pem").read_text(encoding="utf-8")
    t.expect(
        "keys_encrypted",
        measured=key.splitlines()[0],
        held=key.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        expected="-----BEGIN ENCRYPTED PRIVATE KEY-----",
    )
