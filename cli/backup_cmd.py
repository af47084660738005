"""`vrm backup [FILE]` and `vrm restore FILE`: a consistent copy of a node, live or not, and back.

The backup holds the store (SQLite's online backup: safe while `vrm serve` writes), the key file as
it is (encrypted under the passphrase) and the settings; see node.backup. Restoring writes a new home
(--home, $VRM_HOME or the default) and never over one that holds anything.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cli import output
from cli.context import node
from cli.output import JsonOpt


def backup(
    ctx: typer.Context,
    dest: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", help="Where to write it (default: vrm-backup-<node>-<time>.tar here)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a backup of this node (it may be serving meanwhile); restore it with `vrm restore FILE`."""
    from node.backup import backup as write_backup

    home = node(ctx).home()
    if dest is None:
        dest = Path(f"vrm-backup-{home.node_id[:12]}-{time.strftime('%Y%m%dT%H%M%S')}.tar")
    info = write_backup(home.path, dest)
    if as_json:
        output.print_json(info)
        return
    output.say(f"backed up {info.role} node {info.node_id} to {info.path} ({info.size} bytes)")
    if not info.encrypted:
        output.note("the key in this backup is not encrypted (the home has no passphrase): keep the file private")


def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(metavar="FILE", help="A file written by `vrm backup`.")],
    as_json: JsonOpt = False,
) -> None:
    """Bring a backup back as the home (--home, $VRM_HOME or the default), which must be new or empty."""
    from node.backup import restore as read_backup

    info = read_backup(source, node(ctx).home_path())
    if as_json:
        output.print_json(info)
        return
    output.say(f"restored {info.role} node {info.node_id} into {info.path}")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
