"""A_SW_RUNTIME_CONFIGFILES: the legally relevant parameter file edited on disk."""

from __future__ import annotations

import json
import time

from simulations.model import TestbedSpec
from simulations.offline import start_and_watch
from simulations.registry import scenario
from simulations.trial import Trial

EXIT_NO_MATERIAL = 2  # components: "cannot start" with a clear message


@scenario(
    id="type-approval-edited",
    title="Legally relevant parameters edited in the type approval file",
    vectors=["A_SW_RUNTIME_CONFIGFILES"],
    requirements=["MID-7.2"],
    architectures=["4.4", "all"],
    testbed=TestbedSpec(start=False),
    expectations={
        "mother_unit_refuses": "the mother unit does not start with the edited file (exit 2)",
        "processing_refuses": "the remote processing does not start with it (exit 2)",
        "clear_error": "the message names the type approval and its signature",
    },
    budget_s=20.0,
)
async def attack(t: Trial) -> None:
    """Timeline.

    t0      with the instrument off, the attacker edits DIR/type_approval.json: base
            pressure 101.325 -> 100.0 kPa (every Vb 1.3 % larger), the notified body's
            signature left as it was.
    +1 s    the mother unit and the remote processing are started: both refuse to
            start (exit 2) with a message that names the type approval's signature;
            nothing ever computes with the edited parameters.
    """
    path = t.dir / "type_approval.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["approval"]["parameters"]["base_pressure_kpa"] = 100.0
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    t.attack_started("type_approval.json edited")
    logs = t.dir / "logs" / "offline"
    mu = await start_and_watch("mother_unit", "mother-unit", t.dir, logs / "mother-unit.log")
    if mu.returncode == EXIT_NO_MATERIAL and mu.output.strip():
        t.detected(
            time.monotonic(), "refused to start: " + mu.output.strip().splitlines()[-1][:120]
        )
    pr = await start_and_watch("remote_processing", "processing", t.dir, logs / "processing.log")
    t.mark("started", mother_unit=mu.returncode, processing=pr.returncode)
    t.expect(
        "mother_unit_refuses",
        measured={"exit": mu.returncode, "output": mu.output[-300:]},
        held=mu.returncode == EXIT_NO_MATERIAL,
        expected="exit 2",
    )
    t.expect(
        "processing_refuses",
        measured={"exit": pr.returncode, "output": pr.output[-300:]},
        held=pr.returncode == EXIT_NO_MATERIAL,
        expected="exit 2",
    )
    text = (mu.output + pr.output).lower()
    clear = "type approval" in text or "type_approval" in text
    t.expect(
        "clear_error",
        measured=mu.output.strip().splitlines()[-1:] if mu.output.strip() else [],
        held=clear and "signature" in text,
        expected="names the type approval and the signature",
    )
