"""Inline SVG for the report: the architecture diagram and the T7 delay plot.

Plain SVG text with every label escaped, no script, no external reference, so the
report views offline and in any browser (and a Markdown viewer can show the files
written beside report.md).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from html import escape

from testbed.report.architecture import FIGURE2, Figure2Module

FONT = "font-family='system-ui, sans-serif'"
SHORT_LINK = {
    "remote_sensor": "4.1 · AEAD-sealed samples",
    "remote_processing": "4.4 · signed results",
    "remote_storage": "4.2 · records, signed checkpoints",
    "remote_portal": "4.3 · signed commands (S)",
}


def _text(x: float, y: float, text: str, *, size: int = 12, anchor: str = "start",
          weight: str = "normal", fill: str = "#1b1f24") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
            f"font-weight='{weight}' fill='{fill}' {FONT}>{escape(text)}</text>")


def _box(x: float, y: float, w: float, h: float, *, fill: str, stroke: str,
         dashed: bool = False, rx: int = 6) -> str:
    dash = " stroke-dasharray='6 4'" if dashed else ""
    return (f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='{rx}' fill='{fill}' "
            f"stroke='{stroke}' stroke-width='1.5'{dash}/>")


def architecture_diagram(components_run: Collection[str], broker: str) -> str:
    """Figure 2 modules: resident ones inside the mother unit, remote ones outside, linked."""
    w, h = 1000, 480
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' role='img' "
             f"id='architecture-diagram' aria-label='generalized architecture, this "
             f"configuration'>"]
    mx, mw = 345, 310
    parts.append(_box(mx, 20, mw, 400, fill="#f4f6f8", stroke="#4a5560"))
    parts.append(_text(mx + mw / 2, 44, "Mother unit (mother_unit)", size=14, anchor="middle",
                       weight="bold"))
    resident = [m for m in FIGURE2 if not m.remote]
    comm_y = 0.0
    for i, m in enumerate(resident):
        y = 60 + i * 70
        title, _, detail = m.name.partition(" (")
        parts.append(_box(mx + 15, y, mw - 30, 54, fill="#ffffff", stroke="#7d8a96"))
        parts.append(_text(mx + mw / 2, y + 22, title, size=12, anchor="middle", weight="bold"))
        parts.append(_text(mx + mw / 2, y + 41, detail.rstrip(")") or m.runs_as, size=10,
                           anchor="middle", fill="#4a5560"))
        if m.name == "Communication interface":
            comm_y = y + 27
    remote = [m for m in FIGURE2 if m.remote]
    slots = [(15, 40), (745, 40), (15, 270), (745, 270)]
    for m, (x, y) in zip(remote, slots, strict=False):
        parts += _remote_box(m, x, y, ran=m.kind in components_run, comm_y=comm_y,
                             mother=(mx, mx + mw))
    parts.append(_box(15, 436, 970, 34, fill="#fff8e1", stroke="#c9a227", rx=4))
    parts.append(_text(w / 2, 458, f"every link is MQTT through one broker: {broker or 'unknown'}",
                       size=12, anchor="middle"))
    parts.append("</svg>")
    return "".join(parts)


def _remote_box(m: Figure2Module, x: float, y: float, *, ran: bool, comm_y: float,
                mother: tuple[float, float]) -> list[str]:
    bw, bh = 240, 130
    fill, stroke = ("#e3f0fb", "#1f6fb2") if ran else ("#eeeeee", "#9a9a9a")
    cx = x + bw / 2
    out = [_box(x, y, bw, bh, fill=fill, stroke=stroke, dashed=True)]
    out.append(_text(cx, y + 22, f"REMOTE ({m.section})", size=11, anchor="middle",
                     weight="bold", fill=stroke))
    out.append(_text(cx, y + 44, m.name.split(" (")[0], size=13, anchor="middle",
                     weight="bold"))
    out.append(_text(cx, y + 63, m.runs_as, size=11, anchor="middle", fill="#4a5560"))
    out.append(_text(cx, y + 86, "link: " + SHORT_LINK.get(m.kind, m.section), size=11,
                     anchor="middle", fill=stroke))
    status = "ran in these scenarios" if ran else "not run in these scenarios"
    out.append(_text(cx, y + 110, status, size=10, anchor="middle",
                     fill="#1b5e20" if ran else "#8a1c1c"))
    # The link to the mother unit's communication interface.
    left = x < mother[0]
    x1 = x + bw if left else x
    x2 = mother[0] + 15 if left else mother[1] - 15
    dash = "" if ran else " stroke-dasharray='3 3'"
    out.append(f"<line x1='{x1}' y1='{y + bh / 2}' x2='{x2}' y2='{comm_y}' stroke='{stroke}' "
               f"stroke-width='2'{dash}/>")
    return out


# -- T7 -----------------------------------------------------------------------------------


def _bins(lo_exp: int, hi_exp: int, per_decade: int) -> list[float]:
    n = (hi_exp - lo_exp) * per_decade
    return [10 ** (lo_exp + i / per_decade) for i in range(n + 1)]


def delay_plot(samples_ms: Sequence[float], limit_ms: float | None) -> str:
    """Histogram of T7 delays on a logarithmic time axis, with the approved maximum."""
    w, h = 760, 320
    left, right, top, bottom = 60, 20, 30, 50
    pw, ph = w - left - right, h - top - bottom
    head = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' role='img' "
            f"id='delay-plot' aria-label='T7 transmission delay distribution'>")
    positive = [s for s in samples_ms if s > 0]
    if not positive:
        return (head + _text(w / 2, h / 2, "no T7 delays recorded in these results", size=14,
                             anchor="middle") + "</svg>")
    top_value = max([*positive, limit_ms or 0.0])
    lo_exp = math.floor(math.log10(min(positive)))
    hi_exp = max(lo_exp + 1, math.ceil(math.log10(top_value * 1.5)))
    edges = _bins(lo_exp, hi_exp, 8)
    counts = [0] * (len(edges) - 1)
    for s in positive:
        k = min(len(counts) - 1, max(0, int((math.log10(s) - lo_exp) * 8)))
        counts[k] += 1
    peak = max(counts)

    def xpos(v: float) -> float:
        return left + (math.log10(v) - lo_exp) / (hi_exp - lo_exp) * pw

    def ypos(c: float) -> float:
        return top + ph - c / peak * ph

    parts = [head, f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='#fbfcfd' "
                   f"stroke='#c8d0d8'/>"]
    for k, c in enumerate(counts):
        if c:
            x0, x1 = xpos(edges[k]), xpos(edges[k + 1])
            over = limit_ms is not None and edges[k] >= limit_ms
            parts.append(f"<rect class='bar' x='{x0 + 0.5:.1f}' y='{ypos(c):.1f}' "
                         f"width='{max(1.0, x1 - x0 - 1):.1f}' height='{top + ph - ypos(c):.1f}' "
                         f"fill='{'#c62828' if over else '#1f6fb2'}'/>")
    for e in range(lo_exp, hi_exp + 1):
        x = xpos(10**e)
        parts.append(f"<line x1='{x:.1f}' y1='{top + ph}' x2='{x:.1f}' y2='{top + ph + 5}' "
                     f"stroke='#4a5560'/>")
        parts.append(_text(x, top + ph + 18, _ms(10**e), size=11, anchor="middle"))
    for frac in (0.5, 1.0):
        level = peak * frac
        parts.append(_text(left - 6, ypos(level) + 4, f"{level:.0f}", size=11, anchor="end"))
        parts.append(f"<line x1='{left}' y1='{ypos(level):.1f}' x2='{left + pw}' "
                     f"y2='{ypos(level):.1f}' stroke='#e3e8ed'/>")
    parts.append(_text(left + pw / 2, h - 8, "transmission delay (receipt on the mother unit − "
                       "creation on the sensor), logarithmic", size=11, anchor="middle"))
    parts.append(f"<text transform='translate(16 {top + ph / 2:.0f}) rotate(-90)' "
                 f"font-size='11' text-anchor='middle' {FONT}>records</text>")
    if limit_ms is not None:
        x = xpos(limit_ms)
        parts.append(f"<line id='delay-limit' x1='{x:.1f}' y1='{top}' x2='{x:.1f}' "
                     f"y2='{top + ph}' stroke='#c62828' stroke-width='2' "
                     f"stroke-dasharray='6 4'/>")
        parts.append(_text(x - 6, top + 16, f"approved maximum {_ms(limit_ms)}", size=11,
                           anchor="end", fill="#c62828", weight="bold"))
    parts.append("</svg>")
    return "".join(parts)


def _ms(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g} s"
    return f"{v:g} ms"
