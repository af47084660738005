"""The CLI gaps of issue #11 item 8: `purchases list` across vendors, `block`/`unblock` by handle,
tables off a terminal never wrapped, PowerShell completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.clirun import Vrm
from node.identity import Identity
from node.nodeid import encode_node_id

VRM = Path(sys.executable).with_name("vrm")


@pytest.fixture
def alice(tmp_path) -> Vrm:
    vrm = Vrm(tmp_path / "alice")
    vrm("init", "--no-passphrase")
    return vrm


def test_purchases_list_without_a_vendor_lists_every_vendors_newest_first(alice):
    alice("vendors", "add", "Acme Air")
    alice("vendors", "add", "Blue Bikes")
    alice("purchases", "add", "acme-air", "SFO->JFK economy", "--price", "349.00USD")
    alice("purchases", "add", "blue-bikes", "Repair kit", "--price", "12.50EUR")
    alice("purchases", "add", "acme-air", "JFK->SFO economy")
    alice("vendors", "end", "blue-bikes")  # an ended relationship's purchases are listed too
    rows = alice.json("purchases", "list")
    assert [(r["vendor"], r["product"]) for r in rows] == [
        ("@acme-air", "JFK->SFO economy"),
        ("@blue-bikes", "Repair kit"),
        ("@acme-air", "SFO->JFK economy"),
    ]
    table = alice("purchases", "list").stdout
    assert "@blue-bikes" in table and "Repair kit" in table and "12.50" in table
    # one vendor's, as before
    assert [r["product"] for r in alice.json("purchases", "list", "blue-bikes")] == ["Repair kit"]
    alice("purchases", "list", "nobody", code=3)


def test_block_and_unblock_take_a_vendor_handle_as_grants_create_does(alice):
    node_id = encode_node_id(Identity.generate().public_key)
    alice("vendors", "add", "Spam Co", "--node-id", node_id)
    alice("vendors", "add", "No Node")
    out = alice("block", "@spam-co", "--note", "spam").stdout
    assert f"blocked @spam-co ({node_id})" in out
    [entry] = alice.json("blocked")
    assert entry["node_id"] == node_id and entry["note"] == "spam"
    assert "@spam-co" in alice("blocked").stdout
    alice("block", "spam-co", code=4)  # already blocked: the handle names the same node
    alice("block", "no-node", code=6)  # a vendor without a node id cannot be blocked
    assert "neither a node id" in alice("block", "nobody", code=6).stderr  # nor a vendor of yours
    assert f"unblocked @spam-co ({node_id})" in alice("unblock", "spam-co").stdout
    assert alice.json("blocked") == []
    alice("unblock", "spam-co", code=3)
    # node ids still work
    other = encode_node_id(Identity.generate().public_key)
    assert f"blocked {other}" in alice("block", other).stdout


def test_tables_off_a_terminal_keep_each_row_on_one_line(alice):
    long_name = "Acme Intercontinental Airways and Hovercraft Services Incorporated"
    note = " ".join(f"word{i}" for i in range(60))  # ~400 characters, far wider than 80 columns
    alice("vendors", "add", long_name, "--handle", "acme")
    alice("notes", "add", "acme", note, "--tag", "long")
    listing = alice("notes", "list").stdout.splitlines()
    [row] = [line for line in listing if "word0" in line]
    assert note in row and "@acme" in row  # the whole note on one line, no word cut in two
    assert all(line == line.rstrip() for line in listing)  # and no padding to a terminal's width
    vendors = alice("vendors", "list").stdout
    assert any(long_name in line for line in vendors.splitlines())
    status = alice("status", code=3).stdout.splitlines()
    [node_line] = [line for line in status if line.startswith("node")]
    assert encode_node_id(bytes.fromhex(alice.json("id")["public_key"])) in node_line


def test_powershell_completion_script_and_answers(alice, tmp_path):
    for shell in ("powershell", "pwsh"):
        script = alice("completion", shell).stdout
        assert "Register-ArgumentCompleter -Native -CommandName vrm" in script and "_VRM_COMPLETE" in script
    # what the script's block asks of vrm on a Tab: candidates as value:::help lines
    env = {
        **os.environ,
        "VRM_HOME": str(alice.home),
        "_VRM_COMPLETE": "complete_powershell",
        "_TYPER_COMPLETE_ARGS": "vrm vend",
        "_TYPER_COMPLETE_WORD_TO_COMPLETE": "vend",
    }
    answer = subprocess.run([str(VRM)], env=env, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert [line.split(":::")[0] for line in answer.stdout.splitlines()] == ["vendors"]


def test_an_unsupported_shell_is_refused_naming_the_supported_ones(alice):
    refused = alice("completion", "tcsh", code=2)
    for shell in ("bash", "zsh", "fish", "powershell", "pwsh"):
        assert shell in refused.output
    unset = CliRunner().invoke(app, ["completion"], env={"SHELL": ""})
    assert unset.exit_code == 2 and "$SHELL is not set" in unset.output
