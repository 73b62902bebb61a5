"""Root of the ``testbed`` command line.

Each sub-command lives in its own module under ``testbed.commands`` and exposes
``register(app)``; this file only wires them together so that adding a command
never means editing another command's module.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="testbed",
    help="Reference testbed for distributed legal-metrology instruments (WELMEC 7.3).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One module per command group; each has ``register(app: typer.Typer) -> None``.
_COMMAND_MODULES = (
    "testbed.commands.broker",
    "testbed.commands.up",
    "testbed.commands.demo",
    "testbed.commands.status",
    "testbed.commands.provision",
    "testbed.commands.logbook",
    "testbed.commands.pair",
    "testbed.commands.healthcheck",
    "testbed.commands.verify_store",
    "testbed.commands.records",
    "testbed.commands.bench",
    "testbed.commands.scenario",
    "testbed.commands.report",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main() -> None:
    app()
