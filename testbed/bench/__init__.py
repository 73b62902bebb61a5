"""``testbed bench``: the secured pipeline against raw MQTT, side by side in one run (issue 9).

One module per section: :mod:`.baseline`, :mod:`.pipeline`, :mod:`.latency`,
:mod:`.scale`, :mod:`.verification`, :mod:`.micro`; :mod:`.report` turns the
result into targets, a table and JSON. Helpers: :mod:`.instrument` (the
instrument under test and an observer), :mod:`.loadgen` (many paired sensors in
one process), :mod:`.procs`, :mod:`.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.bench.baseline import run_baseline
from testbed.bench.instrument import bench_instrument
from testbed.bench.latency import run_latency
from testbed.bench.micro import run_micro_section
from testbed.bench.pipeline import run_pipeline
from testbed.bench.report import targets
from testbed.bench.scale import run_scale
from testbed.bench.stats import machine_load
from testbed.bench.verification import run_verification
from testbed.broker import running_broker

__all__ = ["BenchConfig", "run_bench"]

SECTIONS = ("baseline", "pipeline", "latency", "scale", "verification", "micro")


@dataclass(frozen=True)
class BenchConfig:
    broker: str = "auto"  # auto (Mosquitto if installed), mosquitto, embedded, mqtt://host:port
    quick: bool = False
    micro_only: bool = False
    sensors: int | None = None  # paired sensors of the instrument (default 100 quick, 1000)
    sections: tuple[str, ...] = SECTIONS
    workdir: Path | None = None  # keep everything (keys, data, logs) here; default: a temp dir
    profile: Path | None = None  # path stem: py-spy profile of the mother unit (pipeline)


Progress = Callable[[str], None]


async def run_bench(cfg: BenchConfig, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Run the selected sections; every figure in one dict (see the README, "Performance")."""
    started = time.monotonic()
    result: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": cfg.quick,
        "python": platform.python_version(),
        "machine": {**machine_load(), "platform": platform.platform()},
    }
    sections = ("micro",) if cfg.micro_only else cfg.sections
    networked = [s for s in sections if s in ("baseline", "pipeline", "latency", "scale")]
    with contextlib.ExitStack() as stack:
        if cfg.workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="testbed-bench-")))
        else:
            work = cfg.workdir
            work.mkdir(parents=True, exist_ok=True)
        if networked:
            async with running_broker(cfg.broker, work / "broker") as broker:
                result["broker"] = {"kind": broker.kind, "url": broker.address.url()}
                if "baseline" in sections:
                    progress("baseline: raw aiomqtt through the broker")
                    result["baseline"] = await run_baseline(broker.address, quick=cfg.quick)
                instrument_sections = [s for s in networked if s != "baseline"]
                if instrument_sections:
                    sensors = cfg.sensors or (100 if cfg.quick else 1_000)
                    if "scale" not in sections:
                        sensors = min(sensors, 10)
                    progress(f"instrument: provisioning and pairing {sensors} sensors")
                    async with bench_instrument(work, broker.address, sensors) as inst:
                        if "pipeline" in sections:
                            progress("pipeline: throughput at saturation")
                            result["pipeline"] = await run_pipeline(
                                inst, quick=cfg.quick, profile_to=cfg.profile
                            )
                        # Scale before latency: the top offered load may exceed what the
                        # pipeline takes, and its backlog must not spill into another section.
                        if "scale" in sections:
                            progress("scale: sensors at 1 Hz")
                            result["scale"] = await run_scale(inst, quick=cfg.quick)
                        if "latency" in sections:
                            progress("latency: fixed offered loads")
                            saturation = result.get("pipeline", {}).get("samples_per_s")
                            result["latency"] = await run_latency(
                                inst, quick=cfg.quick, saturation=saturation
                            )
        if "verification" in sections:
            progress("verification: L6 verifier and logbook proofs")
            result["verification"] = await asyncio.to_thread(run_verification, quick=cfg.quick)
        if "micro" in sections:
            progress("micro: security module and raw library")
            result["micro"] = await asyncio.to_thread(run_micro_section, quick=cfg.quick)
    result["machine_after"] = machine_load()
    result["seconds"] = time.monotonic() - started
    result["targets"] = [t.as_json() for t in targets(result)]
    return result
