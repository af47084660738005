"""The installed `vrm` in real processes: the README walkthrough, `python -m cli`, light start-up and
shell completion answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VRM = Path(sys.executable).with_name("vrm")  # the console script installed beside this interpreter
PASSPHRASE = "correct horse battery staple"
PLACEHOLDER_ID = "bd0175"  # the README's stand-in for "your intent's id"


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    return readme.split("## Walkthrough: your personal node", 1)[1].split("\n## ", 1)[0]


def walkthrough_commands() -> list[str]:
    """Every `vrm` line of the README walkthrough's shell blocks, in order."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", walkthrough(), flags=re.DOTALL):
        lines += [line for line in block.splitlines() if re.match(r"(vrm |.*\| vrm )", line)]
    return lines


def run(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], env=env, capture_output=True, text=True, check=False, timeout=60
    )


def test_readme_walkthrough_runs_with_the_installed_entry_point(tmp_path):
    assert VRM.exists(), f"the project is not installed in {VRM.parent}"
    env = {
        **os.environ,
        "PATH": f"{VRM.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "VRM_HOME": str(tmp_path / "alice-node"),
        "VRM_PASSPHRASE": PASSPHRASE,
    }
    commands = walkthrough_commands()
    assert len(commands) >= 20 and commands[0].startswith("vrm init")
    out: dict[str, str] = {}
    intent_id = None
    for line in commands:
        line = line.replace("/tmp/", f"{tmp_path}/")
        if intent_id:
            line = line.replace(PLACEHOLDER_ID, intent_id[:12])
        result = run(line, env)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        out[line.split("#")[0].strip()] = result.stdout
        if line.startswith("vrm intent "):
            intent_id = result.stdout.strip().splitlines()[-1].removeprefix("intent ")
            assert re.fullmatch(r"[0-9a-f]{64}", intent_id), result.stdout
    assert intent_id is not None

    assert "node id: vrm1" in out["vrm init"]
    assert "reply" in out["vrm search voucher"] and "@acme-air" in out["vrm search voucher"]
    assert out["vrm vault get shipping_address"] == "221B Baker Street, London\n"
    assert "221B" not in out["vrm vault list"] and "alice@example.org" not in out["vrm vault list"]
    assert intent_id[:12] in out["vrm intents list --withdrawn"]
    restored = run("vrm --home " + str(tmp_path / "alice-restored") + " vendors list --json", env)
    assert [v["handle"] for v in json.loads(restored.stdout)] == ["@acme-air", "@blue-bikes", "@cafe"]

    # The README's malformed-intent example prints exactly what it shows.
    [example] = re.findall(r"```text\n\$ (vrm intent .*?)\n(.*?)```", walkthrough(), flags=re.DOTALL)
    result = run(example[0], env)
    assert (result.returncode, result.stdout, result.stderr) == (6, "", example[1])


def test_python_dash_m_cli_is_the_same_command(tmp_path):
    env = {**os.environ, "VRM_HOME": str(tmp_path / "nowhere")}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "vendors", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"error: {tmp_path / 'nowhere'} is not a vrm home")
    usage = subprocess.run(
        [sys.executable, "-m", "cli", "rate"], env=env, capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert usage.returncode == 2 and "Usage: vrm rate" in usage.stderr


def test_start_up_stays_light():
    """Building the whole command tree imports no store, no cryptography and no native core."""
    code = (
        "import sys, json, typer, cli.main\n"
        "typer.main.get_command(cli.main.app)\n"
        "print(json.dumps(sorted(m for m in ('sqlite_utils', 'cryptography', 'node._native', 'trio', 'rich')"
        " if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("vrm ven", ["vendors"]),
        ("vrm vendors show @b", ["@blue-bikes"]),
    ],
)
def test_shell_completion_answers(tmp_path_factory, words, expected):
    from typer.testing import CliRunner

    from cli.main import app

    home = tmp_path_factory.getbasetemp() / "completion-home"
    env = {**os.environ, "VRM_HOME": str(home)}
    if not home.exists():  # set up in-process (fast); only the completion request needs a real process
        for args in (
            ["init", "--no-passphrase"],
            ["vendors", "add", "Acme Air"],
            ["vendors", "add", "Blue Bikes"],
        ):
            assert CliRunner().invoke(app, args, env={"VRM_HOME": str(home)}).exit_code == 0
    env.update(
        {"_VRM_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    )
    result = subprocess.run([str(VRM)], env=env, capture_output=True, text=True, check=False)
    assert result.stdout.split() == expected, result.stderr
