"""`vrm export` and `vrm import`: everything the person owns, as one open JSON document."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import output
from cli.context import new_passphrase, node, passphrase_from_env, stdin_is_tty
from node.errors import ConflictError, NotFoundError, PassphraseError

SOURCE_PASSPHRASE_ENV = "VRM_SOURCE_PASSPHRASE"
BACKUP_PASSPHRASE_ENV = "VRM_BACKUP_PASSPHRASE"


def export(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The file to write (never overwritten).", dir_okay=False)
    ],
    decrypt: Annotated[
        bool, typer.Option("--decrypt", help="Put vault values in the clear (asks for the passphrase).")
    ] = False,
    identity: Annotated[
        bool,
        typer.Option(
            "--identity",
            help="Add a backup of the secret key, sealed under the node's passphrase (for a node without "
            "one: $VRM_BACKUP_PASSPHRASE or asked twice), so an import is the same node.",
        ),
    ] = False,
) -> None:
    """Write everything the node holds to FILE: records, vault (still encrypted unless --decrypt),
    intents, peers, blocks, offers, access requests, grants, receipts, subscriptions, leads, held-data
    metadata, and the public identity (with --identity, the sealed secret key too)."""
    from node.exchange import export_home, write_export

    if file.exists():
        raise ConflictError(f"{file} exists; export never overwrites a file")
    if not file.absolute().parent.is_dir():
        raise NotFoundError("directory", str(file.absolute().parent))
    state = node(ctx)
    passphrase = state.passphrase() if decrypt or identity else None
    backup = (passphrase or _backup_passphrase()) if identity else None
    document = export_home(state.home(), passphrase=passphrase, decrypt=decrypt, identity_passphrase=backup)
    write_export(file, document)
    output.say(f"exported to {file}: {_summary(document)}")
    if decrypt and any("value" in e for e in document["sections"]["vault"]["entries"]):
        output.note(f"WARNING: {file} holds your vault values in the clear; keep it private")


def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="An export written by `vrm export`.", exists=True, dir_okay=False
        ),
    ],
    home: Annotated[
        Path | None,
        typer.Option("--home", help="The new home to create (default: the global --home / $VRM_HOME)."),
    ] = None,
    no_passphrase: Annotated[
        bool, typer.Option("--no-passphrase", help="Create the new home without a passphrase (unencrypted).")
    ] = False,
) -> None:
    """Restore an export into a NEW home: the same node when the export holds an identity backup
    (`vrm export --identity`), else a new identity.

    The new home's passphrase comes from $VRM_PASSPHRASE (or a prompt); a vault exported encrypted, and
    an identity backup, are opened with $VRM_SOURCE_PASSPHRASE, else with that same passphrase.
    """
    from node.exchange import import_home, load_document

    target = home.expanduser().absolute() if home is not None else node(ctx).home_path()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConflictError(f"{target} is not empty; import creates a new home")
    document = load_document(file.read_bytes())
    passphrase = new_passphrase(no_passphrase)
    result = import_home(
        document, target, passphrase=passphrase, source_passphrase=_source_passphrase(document, passphrase)
    )
    counts = ", ".join(
        f"{n} {'vault fields' if table == 'vault' else table}" for table, n in result.counts.items() if n
    )
    output.say(f"imported into {result.home.path}: {counts or 'nothing'}")
    if result.home.node_id == document["node"]["node_id"]:
        output.say(f"node id: {result.home.node_id} (the same node, restored from its identity backup)")
    else:
        output.say(f"node id: {result.home.node_id} (new; the export came from {document['node']['node_id']})")
    if not result.home.encrypted:
        output.note("WARNING: no passphrase: the new home's key and vault are stored UNENCRYPTED")


def _source_passphrase(document: dict[str, Any], passphrase: str | None) -> str | None:
    """The passphrase a sealed vault in the export was made under (None when it holds none)."""
    sections = document.get("sections") if isinstance(document.get("sections"), dict) else {}
    vault = sections.get("vault")
    sealed_vault = isinstance(vault, dict) and vault.get("encrypted")
    if not sealed_vault and sections.get("identity") is None:
        return None
    source = os.environ.get(SOURCE_PASSPHRASE_ENV) or passphrase or passphrase_from_env()
    if source is None:
        if not stdin_is_tty():
            raise PassphraseError(f"the export is sealed (vault or identity): set ${SOURCE_PASSPHRASE_ENV}")
        source = typer.prompt("Passphrase the export was made under", hide_input=True, err=True)
    return source


def _summary(document: dict[str, Any]) -> str:
    sections = document["sections"]
    counts = {table: len(rows) for table, rows in sections["records"].items()}
    counts["vault fields"] = len(sections["vault"]["entries"])
    for name, section in sections.items():
        if isinstance(section, list):  # sections added later (intents …) are lists of entries
            counts[name] = len(section)
    for table, rows in sections.get("data", {}).items():
        counts[table.replace("_", " ")] = len(rows)
    if "identity" in sections:
        counts["identity backup"] = 1
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "nothing yet"


def _backup_passphrase() -> str:
    """The passphrase an identity backup of a node without one is sealed under."""
    value = os.environ.get(BACKUP_PASSPHRASE_ENV)
    if value:
        return value
    if stdin_is_tty():
        return typer.prompt("Passphrase for the identity backup", hide_input=True, confirmation_prompt=True, err=True)
    raise PassphraseError(f"this node has no passphrase: set ${BACKUP_PASSPHRASE_ENV} to seal the identity backup")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)
