"""Output: the targets of issue 9 (met/missed, with the ratio), a rich table, the JSON.

No figure here is ever asserted on: a benchmark reports, the reader judges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    value: float | None
    limit: float
    higher_is_better: bool = True
    unit: str = ""

    @property
    def ratio(self) -> float | None:
        """value / limit (≥ 1 means met) for "at least"; limit / value for "at most"."""
        if self.value is None:
            return None
        if self.higher_is_better:
            return self.value / self.limit if self.limit else None
        return self.limit / self.value if self.value else float("inf")

    @property
    def status(self) -> str:
        r = self.ratio
        return "not measured" if r is None else ("met" if r >= 1.0 else "missed")

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "goal": self.goal, "value": self.value, "limit": self.limit,
                "unit": self.unit, "ratio": self.ratio, "status": self.status}


def _load(result: dict[str, Any], rate: int) -> dict[str, Any] | None:
    for load in result.get("latency", {}).get("loads", []):
        if load["offered_per_s"] == rate:
            return dict(load)
    return None


def targets(result: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    base = result.get("baseline", {}).get("msgs_per_s")
    pipe = result.get("pipeline", {}).get("samples_per_s")
    if base is not None or pipe is not None:
        out.append(Target("pipeline_vs_baseline", "pipeline ≥ 50 % of baseline msg/s",
                          pipe / base if pipe and base else None, 0.5, unit="× baseline"))
    if "latency" in result:
        load = _load(result, 1_000)
        out.append(Target("p99_at_1000", "p99 ≤ 10 ms at 1,000 samples/s",
                          load["p99_ms"] if load else None, 10.0, False, "ms"))
    if "scale" in result:
        steps = result["scale"].get("steps", [])
        clean = [s["sensors"] for s in steps if s["lost"] == 0 and s["complete"]]
        out.append(Target("sensors_1000_no_loss", "1,000 paired sensors, no sample lost",
                          float(max(clean)) if clean else 0.0, 1_000,
                          unit="sensors without loss"))
    if "verification" in result:
        out.append(Target("l6_records_per_s", "L6 verifier ≥ 100,000 records/s",
                          result["verification"]["l6"]["records_per_s"], 100_000, unit="records/s"))
    if "micro" in result:
        out.append(Target("envelope_open_vs_raw", "envelope open ≥ 50 % of raw AEAD decrypt",
                          result["micro"]["envelope_open_vs_raw_decrypt"], 0.5, unit="× raw"))
    return out


def _f(v: Any, digits: int = 0) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return f"{v:,.{digits}f}"


def render(result: dict[str, Any]) -> Group:  # noqa: PLR0912 - one table per section
    tables: list[Table] = []
    if b := result.get("baseline"):
        kind = result.get("broker", {}).get("kind", "broker")
        broker = {"mosquitto": "Mosquitto", "embedded": "embedded broker"}.get(kind, kind)
        t = Table(title=f"1 baseline: aiomqtt → {broker} → aiomqtt, QoS 1")
        for c in ("payload B", "msg/s", "pub msg/s", "lost", "RTT p50 ms", "RTT p99 ms"):
            t.add_column(c, justify="right")
        t.add_row(_f(b["payload_bytes"]), _f(b["msgs_per_s"]), _f(b["publisher_msgs_per_s"]),
                  _f(b["lost"]), _f(b["rtt_p50_ms"], 2), _f(b["rtt_p99_ms"], 2))
        tables.append(t)
    if p := result.get("pipeline"):
        t = Table(title="2 pipeline throughput, every defence on (closed loop)")
        for c in ("sensors", "samples/s", "× baseline", "mother µs/sample", "retransmitted"):
            t.add_column(c, justify="right")
        base = result.get("baseline", {}).get("msgs_per_s")
        t.add_row(_f(p["sensors"]), _f(p["samples_per_s"]),
                  _f(p["samples_per_s"] / base, 2) if base else "-",
                  _f(p["mother_cpu_us_per_sample"]), _f(p["retransmitted"]))
        tables.append(t)
    if lat := result.get("latency"):
        t = Table(title="3 latency: sample created → store acknowledgement")
        for c in ("offered/s", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
                  "T7 p50 ms", "T7 p99 ms"):
            t.add_column(c, justify="right")
        for x in lat["loads"]:
            t.add_row(_f(x["offered_per_s"]), _f(x["achieved_per_s"]), _f(x["p50_ms"], 1),
                      _f(x["p99_ms"], 1), _f(x["p999_ms"], 1), _f(x["max_ms"], 1),
                      _f(x["t7_p50_ms"], 1), _f(x["t7_p99_ms"], 1))
        tables.append(t)
    if sc := result.get("scale"):
        t = Table(title=f"4 scale: one mother unit, sensors at 1 Hz "
                        f"(pairing {sc['paired_sensors']} took {sc['pairing_s']:.1f} s)")
        for c in ("sensors", "created", "stored", "lost", "accepted/s", "mother µs/sample",
                  "mother CPU", "RSS MiB", "state"):
            t.add_column(c, justify="right")
        for s in sc["steps"]:
            t.add_row(_f(s["sensors"]), _f(s["created"]), _f(s["stored"]), _f(s["lost"]),
                      _f(s["accepted_per_s"], 1), _f(s["mother_cpu_us_per_sample"]),
                      f"{s['mother_cpu_share']:.0%}", _f(s["mother_rss_mib"], 1),
                      s["instrument_state"])
        tables.append(t)
    if v := result.get("verification"):
        t = Table(title="5 verification")
        t.add_column("what")
        t.add_column("ops/s", justify="right")
        t.add_row(f"L6 verifier, {v['l6']['records']:,} records ({v['l6']['verifier']})",
                  _f(v["l6"]["records_per_s"]))
        for k, val in v["logbook"].items():
            if k.endswith("_per_s"):
                t.add_row(f"logbook {k.removesuffix('_per_s').replace('_', ' ')}", _f(val))
        tables.append(t)
    if m := result.get("micro"):
        t = Table(title="6 micro: security module next to the raw library")
        t.add_column("operation")
        t.add_column("ops/s", justify="right")
        t.add_column("× raw", justify="right")
        for op, rate in m["ops_per_s"].items():
            t.add_row(op, _f(rate), _f(m["vs_raw"][op], 2) if op in m["vs_raw"] else "")
        tables.append(t)
    tt = Table(title="targets (issue 9)")
    for c in ("target", "value", "ratio", "status"):
        tt.add_column(c)
    for target in targets(result):
        style = {"met": "green", "missed": "red"}.get(target.status, "yellow")
        tt.add_row(target.goal, f"{_f(target.value, 2)} {target.unit}",
                   _f(target.ratio, 2), f"[{style}]{target.status}[/]")
    tables.append(tt)
    return Group(*tables)
