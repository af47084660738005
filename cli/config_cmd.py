"""`vrm config show|get|set|unset`: the home's settings file (node.toml), read by `vrm serve`.

A value is checked before the file is written: an unknown key or a value of the wrong type is refused
(exit 6) with the key named, and the file is left as it was.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import output
from cli.context import node
from cli.output import JsonOpt

config = typer.Typer(help="The node's settings (node.toml in its home): show, get, set, unset.", no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="A dotted key such as server.port (see `vrm config show`).")]


def _home(ctx: typer.Context) -> str:
    return node(ctx).home().path  # refuses a directory that is not a node home


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


@config.command("show")
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every setting, its value and whether it is set in the file or the default."""
    from node.config import SETTINGS, config_path, load

    home = _home(ctx)
    settings = load(home)
    values = settings.effective()
    if as_json:
        output.print_json(values)
        return
    typer.echo(f"# {config_path(home)}", err=True)
    for key, value in values.items():
        origin = "set" if key in settings.values else "default"
        typer.echo(f"{key} = {_text(value)!s}    ({origin}: {SETTINGS[key].help})")


@config.command("get")
def get(ctx: typer.Context, key: KeyArg) -> None:
    """Print one setting's value (the default when the file does not set it)."""
    from node.config import load

    typer.echo(_text(load(_home(ctx)).get(key)))


@config.command("set")
def set_(
    ctx: typer.Context,
    key: KeyArg,
    value: Annotated[str, typer.Argument(metavar="VALUE", help="8470, true, text, or a,b for a list.")],
) -> None:
    """Set a setting in node.toml (checked first: the file changes only if the value is valid)."""
    from node.config import load, parse_text, save

    home = _home(ctx)
    settings = load(home)
    settings.set(key, parse_text(key, value))
    path = save(home, settings)
    typer.echo(f"{key} = {_text(settings.get(key))} in {path}", err=True)
    if node_serving(ctx):
        typer.echo("note: `vrm serve` is running; it reads the settings when it starts", err=True)


@config.command("unset")
def unset(ctx: typer.Context, key: KeyArg) -> None:
    """Remove a setting from node.toml: it is back at its default."""
    from node.config import load, save

    home = _home(ctx)
    settings = load(home)
    settings.unset(key)
    save(home, settings)


def node_serving(ctx: typer.Context) -> bool:
    from pathlib import Path

    return (Path(_home(ctx)) / "admin.json").exists()


def register(app: typer.Typer) -> None:
    app.add_typer(config, name="config")
