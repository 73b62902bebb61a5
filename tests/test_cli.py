"""Every command explains itself with --help."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from testbed.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("broker", ["--port", "--host", "QoS", "SIGTERM"]),
        ("up", ["--dir", "--duration", "--rate", "--broker", "--instrument", "mqtt://", "exit 3"]),
        ("demo", ["--duration", "--json", "--broker", "--rate", "end to end"]),
        ("status", ["--dir", "--broker", "--json", "retained"]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_help_is_useful(command: str, words: list[str]) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    for word in words:
        assert word in result.output, word


def test_root_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    for command in ("broker", "up", "demo", "status"):
        assert command in result.output
