"""`vrm init` and `vrm id`: the node's home and identity."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import output
from cli.context import new_passphrase, node
from cli.output import JsonOpt
from node.errors import ConflictError


def init(
    ctx: typer.Context,
    vendor: Annotated[
        bool, typer.Option("--vendor", help="Create a vendor node instead of a person node.")
    ] = False,
    no_passphrase: Annotated[
        bool, typer.Option("--no-passphrase", help="Store the secret key unencrypted (not recommended).")
    ] = False,
) -> None:
    """Create the node's home: a new Ed25519 identity and an empty store. Never overwrites a home.

    The passphrase comes from $VRM_PASSPHRASE, else it is asked twice on the terminal.
    """
    from node.home import KEY_FILE, init_home

    path = node(ctx).home_path()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "holds a vrm node" if (path / KEY_FILE).exists() else "is not an empty directory"
        raise ConflictError(f"{path} {what}; init never overwrites it")
    passphrase = new_passphrase(no_passphrase)
    info = init_home(path, passphrase, role="vendor" if vendor else "person")
    output.say(f"Initialised a {info.role} node in {info.path}")
    output.say(f"node id: {info.node_id}")
    if info.encrypted:
        output.note("The secret key and the vault are encrypted with your passphrase; keep it safe.")
    else:
        output.note(
            f"WARNING: no passphrase: the secret key in {info.key_path} and the vault are stored "
            "UNENCRYPTED. Anyone who can read this directory can act as this node."
        )


def show_id(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Print this node's id, public key and home (no passphrase needed)."""
    info = node(ctx).home()
    if as_json:
        output.print_json(info)
        return
    output.fields(
        [
            ("node id", info.node_id),
            ("public key", info.public_key),
            ("role", info.role),
            ("home", info.path),
            ("encrypted", info.encrypted),
            ("created", output.when(info.created_at)),
        ]
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("id")(show_id)
