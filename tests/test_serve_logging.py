"""`vrm serve --log-level/--log-format`: what the daemon's log looks like (configure_logging)."""

from __future__ import annotations

import json
import logging

import pytest

from cli.serve_cmd import configure_logging


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_at_the_chosen_level(capsys, restore_root_logger):
    configure_logging("info", "json")
    logging.getLogger("vrm.test").debug("hidden")
    logging.getLogger("vrm.test").info("peer %s unreachable", "alice")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["level"] == "info" and line["logger"] == "vrm.test"
    assert line["message"] == "peer alice unreachable" and isinstance(line["at"], int)


def test_text_format_and_bad_values(capsys, restore_root_logger):
    configure_logging("warning", "text")
    logging.getLogger("vrm.test").info("hidden")
    logging.getLogger("vrm.test").warning("refused")
    err = capsys.readouterr().err
    assert "hidden" not in err and "vrm.test WARNING refused" in err
    for level, fmt in (("loud", "text"), ("info", "xml")):
        with pytest.raises(ValueError):
            configure_logging(level, fmt)
