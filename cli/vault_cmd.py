"""`vrm vault …`: named personal fields, encrypted at rest when the node has a passphrase.

Only `vault get NAME` ever prints a value; `list` shows names and times. While `vrm serve` runs, `set`
and `delete` go through it (the vault.set / vault.delete ops), so live push grants covering the field
push the change to their vendors at once; without a daemon they work on the store, and the daemon
pushes what changed when it starts.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli import output
from cli.context import node, stdin_is_tty
from cli.output import JsonOpt

NameArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="Field name: name, email, shipping_address, sizes, … (a-z 0-9 _ . -)."
    ),
]

vault = typer.Typer(help="Your personal data vault: set, get, list, delete.", no_args_is_help=True)


@vault.command("set")
def set_(
    ctx: typer.Context,
    name: NameArg,
    value: Annotated[
        str | None,
        typer.Argument(
            metavar="VALUE",
            help="The value; '-' reads it from stdin; omit it to be asked (hidden) on a terminal.",
        ),
    ] = None,
) -> None:
    """Store a field (creating or replacing it). Prefer '-' or the prompt for secrets: no shell history."""
    if value == "-":
        value = sys.stdin.read()
        value = value.removesuffix("\n").removesuffix("\r")  # the line end `echo` or a heredoc adds
    elif value is None:
        if not stdin_is_tty():
            raise typer.BadParameter("give VALUE, or '-' to read it from stdin", param_hint="VALUE")
        value = typer.prompt(f"Value for {name}", hide_input=True, err=True)
    state = node(ctx)
    done = state.run_op_on_daemon("vault.set", {"name": name, "value": value})
    if done is None:
        entry = state.vault(unlock=True).set(name, value)
        done = {"name": entry.name, "encrypted": entry.encrypted}
    if done["encrypted"]:
        output.say(f"stored {done['name']} (encrypted)")
    else:
        output.say(f"stored {done['name']}")
        output.note("note: this node has no passphrase, so vault values are stored unencrypted")


@vault.command("get")
def get(ctx: typer.Context, name: NameArg) -> None:
    """Print one field's value, and nothing else."""
    typer.echo(node(ctx).vault(unlock=True).get(name))


@vault.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Field names and times; never a value (no passphrase needed)."""
    entries = node(ctx).vault(unlock=False).list()
    if as_json:
        output.print_json(entries)
        return
    output.table(
        ("name", "encrypted", "created", "updated"),
        ((e.name, e.encrypted, output.when(e.created_at), output.when(e.updated_at)) for e in entries),
    )


@vault.command("delete")
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Remove a field."""
    state = node(ctx)
    if state.run_op_on_daemon("vault.delete", {"name": name}) is None:
        state.vault(unlock=False).delete(name)
    output.say(f"deleted {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(vault, name="vault")
