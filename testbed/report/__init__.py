"""The evidence report for notified bodies (issue 8): ``testbed report``.

:func:`build` (model.py) judges a scenario run against the evidence catalogue;
:func:`write_report` writes ``report.html`` (self-contained), ``report.md`` with
its two SVG figures, and the ``results.json`` it was made from, so that the same
report can be rendered again with ``testbed report --from``.
"""

from __future__ import annotations

from pathlib import Path

from testbed.report.model import SECTIONS, Report, build
from testbed.report.render_html import render_html
from testbed.report.render_md import ARCHITECTURE_SVG, DELAY_SVG, render_markdown
from testbed.report.svg import architecture_diagram, delay_plot

__all__ = ["REPORT_FILES", "SECTIONS", "Report", "build", "write_report"]

RESULTS_FILE = "results.json"
REPORT_FILES = ("report.html", "report.md", ARCHITECTURE_SVG, DELAY_SVG, RESULTS_FILE)


def write_report(report: Report, out: Path) -> list[Path]:
    """Write the report's files into ``out`` (created); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "report.html": render_html(report),
        "report.md": render_markdown(report),
        ARCHITECTURE_SVG: architecture_diagram(report.components_run, report.instrument.broker),
        DELAY_SVG: delay_plot(report.delays.samples_ms, report.delays.limit_ms),
        RESULTS_FILE: report.run.model_dump_json(indent=2) + "\n",
    }
    paths = []
    for name, text in texts.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
