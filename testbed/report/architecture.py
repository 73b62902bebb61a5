"""This configuration against the generalized architecture (WELMEC 7.3 §3.2, Figure 2).

Figure 2 splits an instrument into modules; §4 moves single modules out of the
mother unit over a network. Here the sensor (4.1), the long-term storage (4.2),
the legally non-relevant software (4.3, the portal) and part of the legally
relevant processing (4.4) run remotely, each as its own process meeting the
mother unit only on the MQTT broker. :data:`FIGURE2` says where each module runs
and over which link; :data:`MODULES` which WELMEC 7.2 extension applies to each
remote module (T for 4.1 and 4.4, L for 4.2, S for 4.3) plus what the whole
instrument carries (MID Annex I 8.2, 8.3, 7.2; P2/U2, P8/U8).
"""

from __future__ import annotations

from dataclasses import dataclass

T = tuple(f"T{n}" for n in range(1, 9))
L = tuple(f"L{n}" for n in range(1, 9))


@dataclass(frozen=True)
class Figure2Module:
    """One module of WELMEC 7.3 Figure 2 and where it runs in this configuration."""

    name: str
    remote: bool
    section: str  # the reference architecture moving it out ("" if resident)
    runs_as: str  # process / package
    kind: str  # component kind in the results ("" if part of the mother unit)
    link: str  # how it reaches the mother unit ("" if resident)


FIGURE2: tuple[Figure2Module, ...] = (
    Figure2Module("Sensor", True, "4.1", "remote_sensor (sensor-1)", "remote_sensor",
                  "MQTT: samples sealed with ChaCha20-Poly1305 under the pairing key (P8/U8)"),
    Figure2Module("Legally relevant processing (conversion Vm → Vb)", True, "4.4",
                  "remote_processing", "remote_processing",
                  "MQTT: requests; results signed Ed25519 with the software identifier"),
    Figure2Module("Long-term storage", True, "4.2", "remote_storage (SQLite)", "remote_storage",
                  "MQTT: record batches under the mother unit's signed checkpoints; "
                  "acknowledged after fsync"),
    Figure2Module("Legally non-relevant software", True, "4.3", "remote_portal", "remote_portal",
                  "MQTT: closed list of commands signed by the portal (protective interface, S)"),
    Figure2Module("Legally relevant processing (checks, state)", False, "", "mother_unit",
                  "mother_unit", ""),
    Figure2Module("Indication", False, "", "mother_unit (retained indication)", "mother_unit",
                  ""),
    Figure2Module("User interface", False, "", "mother_unit (command topic, state)",
                  "mother_unit", ""),
    Figure2Module("Communication interface", False, "", "mother_unit (MQTT link)",
                  "mother_unit", ""),
    Figure2Module("Security module", False, "", "security_module (a library in every process)",
                  "mother_unit", ""),
)


@dataclass(frozen=True)
class RemoteModule:
    """A remote module (or the whole instrument) and the requirements that apply to it."""

    key: str
    title: str
    section: str
    extension: str
    requirements: tuple[str, ...]
    # Scenarios count for a requirement here if they declare one of these architectures
    # (or "all"); None: every scenario (the whole instrument).
    architectures: tuple[str, ...] | None


MODULES: tuple[RemoteModule, ...] = (
    RemoteModule("sensor", "Remote sensor", "4.1", "T", (*T, "P8/U8"), ("4.1",)),
    RemoteModule("storage", "Remote long-term storage", "4.2", "L", L, ("4.2",)),
    RemoteModule("portal", "Remote legally non-relevant software", "4.3", "S", ("S",), ("4.3",)),
    RemoteModule("processing", "Remote legally relevant processing", "4.4", "T",
                 (*T, "P2/U2"), ("4.4",)),
    RemoteModule("instrument", "The whole instrument (mother unit)", "MID Annex I",
                 "MID", ("MID-8.2", "MID-8.3", "MID-7.2", "P2/U2"), None),
)
