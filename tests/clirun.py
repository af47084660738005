"""`vrm` run in-process against one home, for tests that drive the CLI as a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app

_DEFAULT = ""  # "the runner's passphrase" (None means none at all)


class Vrm:
    """Runs `vrm ARGS` in-process against one home and checks the exit code; ``passphrase`` is given
    as VRM_PASSPHRASE (None: unset), per call if ``passphrase=`` is passed."""

    def __init__(self, home: Path, passphrase: str | None = None) -> None:
        self.home = home
        self.passphrase = passphrase
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, input: str | None = None, passphrase: str | None = _DEFAULT) -> Any:
        env = {"VRM_HOME": str(self.home), "VRM_PASSPHRASE": self.passphrase if passphrase == _DEFAULT else passphrase}
        result = self.runner.invoke(app, list(args), env=env, input=input)
        # A Python exception (a bug) also exits 1: only deliberate exits count.
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)
