"""`vrm serve --log-level/--log-format` (or log.level/log.format in node.toml): what the daemon's log looks like."""

from __future__ import annotations

import json
import logging

import pytest

from cli.serve_cmd import setup_logging


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_at_the_chosen_level(capsys, restore_root_logger):
    setup_logging("info", "json")
    logging.getLogger("vrm.test").debug("hidden")
    logging.getLogger("vrm.test").info("peer %s unreachable", "alice")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["level"] == "info" and line["logger"] == "vrm.test"
    assert line["message"] == "peer alice unreachable" and isinstance(line["at"], int)


def test_text_format_and_bad_values(capsys, restore_root_logger, tmp_path):
    setup_logging("warning", "text")
    logging.getLogger("vrm.test").info("hidden")
    logging.getLogger("vrm.test").warning("refused")
    err = capsys.readouterr().err
    assert "hidden" not in err and "vrm.test WARNING refused" in err
    from typer.testing import CliRunner

    from cli.main import app
    from node.home import init_home

    home = init_home(tmp_path / "home", None)
    for flag, value, key in (("--log-level", "loud", "log.level"), ("--log-format", "xml", "log.format")):
        refused = CliRunner().invoke(app, ["--home", str(home.path), "serve", "--port", "0", flag, value])
        assert refused.exit_code == 6 and key in refused.output  # refused naming the key, nothing served
