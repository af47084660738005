"""`vrm passphrase change`: re-seal the node's key and vault key under a new passphrase.

The node id and every vault value stay the same (the vault key is wrapped, not derived: see
node.keystore), so nothing else is rewritten. The current passphrase comes as for any command
($VRM_PASSPHRASE or a hidden prompt), the new one from $VRM_NEW_PASSPHRASE or a prompt asked twice.
"""

from __future__ import annotations

import os

import typer

from cli import output
from cli.context import node, stdin_is_tty
from cli.output import JsonOpt
from node.errors import PassphraseError

NEW_PASSPHRASE_ENV = "VRM_NEW_PASSPHRASE"

passphrase = typer.Typer(help="The passphrase that encrypts this node's key and vault.", no_args_is_help=True)


def _new_passphrase() -> str:
    value = os.environ.get(NEW_PASSPHRASE_ENV)
    if value:
        return value
    if stdin_is_tty():
        return typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True, err=True)
    raise PassphraseError(f"no new passphrase: set ${NEW_PASSPHRASE_ENV} or run on a terminal to be asked")


@passphrase.command("change")
def change(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Change the passphrase (the old one is needed). The node id and the vault's values are kept; a
    running `vrm serve` keeps working, and asks for the new passphrase when next started."""
    from node.keystore import change_passphrase

    state = node(ctx)
    info = state.home()
    if not info.encrypted:
        raise PassphraseError("this node has no passphrase to change (it was created with --no-passphrase)")
    old = state.passphrase()
    assert old is not None  # an encrypted home always has one
    new = _new_passphrase()
    if new == old:
        raise PassphraseError("the new passphrase is the old one")
    changed = change_passphrase(info.key_path, old, new)
    if json_out:
        output.print_json({"node_id": changed.node_id, "changed": True, "kdf": "argon2id"})
    else:
        output.say(f"passphrase changed for {changed.node_id}")
        output.note("use the new passphrase from now on (in $VRM_PASSPHRASE too, if you set it)")


def register(app: typer.Typer) -> None:
    app.add_typer(passphrase, name="passphrase")
