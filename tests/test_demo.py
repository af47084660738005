"""`vrm demo`, the README's first command, shows the data path doing what it claims."""

from __future__ import annotations

import io

from rich.console import Console

from cli.demo import run_demo


def test_demo_verifies_the_good_and_names_each_refusal():
    out = io.StringIO()
    assert run_demo(batch_size=64, console=Console(file=out, width=200)) == 0
    text = out.getvalue()
    assert "Single ZIP-215 verification: ok" in text
    assert "id matches: True" in text
    for row, verdict in (("a valid intent", "ok"), ("SFO changed to LAX", "bad_signature"),
                         ("expired yesterday", "expired"), ("a truncated envelope", "malformed")):  # fmt: skip
        line = next(line for line in text.splitlines() if row in line)
        assert f" {verdict} " in line, line
    assert "61 accepted, 3 refused" in text
