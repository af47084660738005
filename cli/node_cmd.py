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
    role: Annotated[
        str | None, typer.Option("--role", metavar="ROLE", help="person or vendor (--vendor = --role vendor).")
    ] = None,
    name: Annotated[
        str, typer.Option(help='The name this node shows its peers, e.g. "Acme Air" (a vendor\'s offers carry it).')
    ] = "",
    handle: Annotated[
        str | None, typer.Option(help="A vendor's handle, e.g. acme-air; default derived from --name.")
    ] = None,
    no_passphrase: Annotated[
        bool, typer.Option("--no-passphrase", help="Store the secret key unencrypted (not recommended).")
    ] = False,
) -> None:
    """Create the node's home: a new Ed25519 identity and an empty store. Never overwrites a home.

    The passphrase comes from $VRM_PASSPHRASE, else it is asked twice on the terminal.
    """
    from node.home import KEY_FILE, ROLES, check_handle, check_name, init_home

    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"{role!r}: choose {' or '.join(ROLES)}", param_hint="--role")
    if vendor and role == "person":
        raise typer.BadParameter("--vendor and --role person contradict each other")
    role = "vendor" if vendor else role or "person"
    name = check_name(name)
    if handle is None and name and role == "vendor":
        from node.records import handle_from_name

        handle = handle_from_name(name)
    handle = check_handle(handle or "")
    path = node(ctx).home_path()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "holds a vrm node" if (path / KEY_FILE).exists() else "is not an empty directory"
        raise ConflictError(f"{path} {what}; init never overwrites it")
    passphrase = new_passphrase(no_passphrase)
    info = init_home(path, passphrase, role=role, name=name, handle=handle)
    output.say(f"Initialised a {info.role} node in {info.path}")
    output.say(f"node id: {info.node_id}")
    if info.name or info.handle:
        output.say(f"shown to peers as: {_presented(info.name, info.handle)}")
    if info.role == "vendor" and not info.handle:
        output.note("Offers carry a name and handle: set them with `vrm profile --name NAME --handle HANDLE`.")
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
            ("name", info.name or None),
            ("handle", f"@{info.handle}" if info.handle else None),
            ("home", info.path),
            ("encrypted", info.encrypted),
            ("created", output.when(info.created_at)),
        ]
    )


def profile(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help='The name shown to peers ("" clears it).')] = None,
    handle: Annotated[str | None, typer.Option(help='The handle shown to peers ("" clears it).')] = None,
) -> None:
    """Set the name and handle this node presents to its peers (a vendor's offers carry both).

    A running `vrm serve` picks the change up when restarted.
    """
    from node.home import set_profile

    if name is None and handle is None:
        raise typer.BadParameter("give --name, --handle or both")
    info = set_profile(node(ctx).home_path(), name=name, handle=handle)
    output.say(f"shown to peers as: {_presented(info.name, info.handle) or '(no name, no handle)'}")


def _presented(name: str, handle: str) -> str:
    return " ".join(part for part in (name, f"@{handle}" if handle else "") if part)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("id")(show_id)
    app.command("profile")(profile)
