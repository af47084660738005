"""Issue 10 item 9: `vrm import` of JSON nested 200,000 deep is refused with a clear error (no
RecursionError traceback) and creates no home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VRM = Path(sys.executable).with_name("vrm")


def test_import_of_deeply_nested_json_is_a_clear_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"a":' * 200_000 + "1" + "}" * 200_000)
    target = tmp_path / "home"
    result = subprocess.run(
        [str(VRM), "--home", str(target), "import", str(deep)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "VRM_PASSPHRASE": "deep json passphrase"},
    )
    assert result.returncode == 1, (result.returncode, result.stderr)  # the CLI's exit code for a refused input
    assert result.stderr.strip() == "error: not a vrm export (JSON nested too deeply)"
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert not target.exists() or not any(target.iterdir())
