"""Export and import of everything a person owns, as one open-format JSON document.

Document (version 1)::

    {"format": "vrm-export", "version": 1, "exported_at": ms, "schema_version": n,
     "node": {"public_key": hex, "node_id": "vrm1…", "role": "person", "name", "handle", "created_at": ms},
     "sections": {
       "records": {"vendors": [row, …], "engagement_changes": […], "purchases": […], "notes": […],
                   "ratings": […], "recommendations": […], "issues": […], "issue_replies": […]},
       "vault": {"encrypted": bool, "kdf": null | {argon2id parameters, salt, the wrapped vault key},
                 "entries": [{"name", "created_at", "updated_at", "value"} |
                             {"name", "created_at", "updated_at", "nonce": hex, "ciphertext": hex}]},
       "intents": [{"id": hex, "text", "created": ms, "expires": ms,
                    "envelope": hex, "withdrawal": hex | null}, …],
       "data": {"peers": [row, …], "blocked", "access_requests", "offers", "agreements", "grants", "receipts",
                "receipt_copies", "subscriptions", "leads", "held_data" (metadata only)},
       "identity": absent | a sealed key file (node.exchange_data)}}

Rows carry every column under its column name, ids included, times in milliseconds; note tags are a
list and ``would_recommend`` a boolean. The secret key never leaves the node: only the public part of
the identity is exported unless an identity backup is asked for (``identity_passphrase``: the secret
key sealed under that passphrase); without one an import creates a new home with a new identity, with
one the same node id, and either way it records where the data came from in its config
(``imported_from``). The vault stays sealed unless ``decrypt=True``; a
sealed vault needs the passphrase it was sealed under to be imported.

Intents travel as the envelopes that were signed (PROTOCOL.md section 5), with their withdrawal when
there is one; ``id``, ``text``, ``created`` and ``expires`` repeat what the envelope says for people
reading the file. Import checks every signature (at the envelope's own creation time, so expired
intents come back too) and that the body is what its text gives. Imported intents keep their original
author: the new home lists them but cannot withdraw them (it has a new key).

Later versions may add sections under ``sections``; an importer that meets a section it does not
know refuses the document rather than silently dropping someone's data.

The import's checks are node.exchange_checks; the ``data`` and ``identity`` sections node.exchange_data.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import ExchangeError, HomeError
from node.exchange_checks import (  # noqa: F401 (re-exported: the document's names)
    FORMAT,
    INTENT_ENTRY,
    SECTIONS,
    VERSION,
    _COLUMN_FORMS,
    _check_header,
    _check_intents,
    _check_records,
    _open_vault_section,
)
from node.exchange_data import check_data, export_data, export_identity, identity_seed, store_data
from node.home import DB_FILE, KEY_FILE, HomeInfo, init_home, load_home
from node.keystore import derive_vault_key, vault_kdf, write_new_file
from node.records import RECORD_TABLES
from node.store import Clock, Store, wall_clock_ms
from node.vault import SCHEME_PLAIN, SCHEME_SEALED, seal, unseal


@dataclass(frozen=True)
class ImportResult:
    home: HomeInfo
    counts: dict[str, int] = field(default_factory=dict)  # rows per table, "vault" for vault fields


def export_home(
    home: HomeInfo | str | os.PathLike[str],
    *,
    passphrase: str | None = None,
    decrypt: bool = False,
    identity_passphrase: str | None = None,
    clock: Clock = wall_clock_ms,
) -> dict[str, Any]:
    """The whole home as a JSON-serialisable document. ``decrypt=True`` opens the vault (needs the
    passphrase of an encrypted home) and puts its values in the clear. ``identity_passphrase`` adds a
    backup of the secret key sealed under it (the home's own ``passphrase`` opens the key first)."""
    info = home if isinstance(home, HomeInfo) else load_home(home)
    key = derive_vault_key(info.key_path, passphrase) if decrypt else None
    backup = None
    if identity_passphrase is not None:
        backup = export_identity(info.key_path, passphrase, identity_passphrase)
    with Store(info.db_path, clock=clock) as store:
        with store.transaction():  # one snapshot of every table
            records = {
                table: [_to_document(table, row) for row in store.query(f"SELECT * FROM {table} ORDER BY id")]
                for table in RECORD_TABLES
            }
            vault_rows = store.query("SELECT * FROM vault ORDER BY name")
            intent_rows = store.query("SELECT * FROM intents ORDER BY created_at, id")
            data = export_data(store)
            schema_version = store.schema_version
    entries = [_vault_entry(row, key, decrypt) for row in vault_rows]
    sealed = any("ciphertext" in e for e in entries)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": clock(),
        "schema_version": schema_version,
        "node": {
            "public_key": info.public_key,
            "node_id": info.node_id,
            "role": info.role,
            "name": info.name,
            "handle": info.handle,
            "created_at": info.created_at,
        },
        "sections": {
            "records": records,
            "vault": {
                "encrypted": sealed,
                "kdf": vault_kdf(info.key_path) if sealed else None,
                "entries": entries,
            },
            "intents": [_intent_entry(row) for row in intent_rows],
            "data": data,
            **({"identity": backup} if backup is not None else {}),
        },
    }


def _to_document(table: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        c: (_COLUMN_FORMS[(table, c)][0](v) if (table, c) in _COLUMN_FORMS else v) for c, v in row.items()
    }


def _vault_entry(row: dict[str, Any], key: bytes | None, decrypt: bool) -> dict[str, Any]:
    entry = {"name": row["name"], "created_at": row["created_at"], "updated_at": row["updated_at"]}
    if row["scheme"] == SCHEME_PLAIN:
        return {**entry, "value": bytes(row["value"]).decode("utf-8")}
    if decrypt:
        assert key is not None  # derive_vault_key raised PassphraseError otherwise
        return {**entry, "value": unseal(key, row["name"], row["nonce"], row["value"])}
    return {**entry, "nonce": bytes(row["nonce"]).hex(), "ciphertext": bytes(row["value"]).hex()}


def _intent_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "text": row["text"],
        "created": row["created_at"],
        "expires": row["expires_at"],
        "envelope": bytes(row["raw"]).hex(),
        "withdrawal": None if row["withdrawal_raw"] is None else bytes(row["withdrawal_raw"]).hex(),
    }


def dump_document(document: dict[str, Any]) -> str:
    """The document as JSON text: UTF-8, sorted keys, indented, so exports diff well."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_document(text: str | bytes) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExchangeError(f"not a JSON document: {exc}") from None
    except RecursionError:
        # json's decoder recurses per nesting level; an export is a few levels deep
        raise ExchangeError("not a vrm export (JSON nested too deeply)") from None
    if not isinstance(document, dict):
        raise ExchangeError("not a vrm export (the top level is not an object)")
    return document


def write_export(path: str | os.PathLike[str], document: dict[str, Any]) -> None:
    """Write an export file readable by its owner only (it may hold decrypted vault values); never
    replaces an existing file."""
    try:
        write_new_file(Path(path), dump_document(document).encode("utf-8"), mode=0o600)
    except HomeError as exc:
        raise ExchangeError(str(exc)) from None


# -- import ------------------------------------------------------------------------------------------


def import_home(
    document: dict[str, Any],
    target: str | os.PathLike[str],
    *,
    passphrase: str | None,
    source_passphrase: str | None = None,
    clock: Clock = wall_clock_ms,
) -> ImportResult:
    """Create a new home at ``target`` (missing or an empty directory) holding the document's data.

    ``passphrase`` protects the new home (None: unencrypted). A sealed vault in the document is opened
    with ``source_passphrase`` (default: ``passphrase``) and sealed again under the new home's key.
    The whole document is checked before anything is created; the home appears only when complete.
    """
    target = Path(target).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExchangeError(f"{target} is not empty; import creates a new home")
    with Store(":memory:") as scratch:  # the current schema, to check rows against
        columns = {
            t: {r["name"]: r["type"].upper() for r in scratch.query(f"PRAGMA table_info({t})")}
            for t in RECORD_TABLES
        }
        schema_version = scratch.schema_version
    _check_header(document, schema_version)
    sections = document["sections"]
    records = _check_records(sections.get("records", {}), columns)
    vault_values = _open_vault_section(sections.get("vault"), source_passphrase or passphrase)
    intent_rows = _check_intents(sections.get("intents", []))
    with Store(":memory:") as scratch:
        data_rows = check_data(sections.get("data"), scratch)
    node = document["node"]
    author = bytes.fromhex(node["public_key"])
    seed = identity_seed(sections.get("identity"), source_passphrase or passphrase, author)

    staging = target.parent / f".{target.name}.importing-{secrets.token_hex(4)}"
    try:
        init_home(
            staging,
            passphrase,
            role=node["role"],
            name=node.get("name", ""),  # absent from exports made before profiles existed
            handle=node.get("handle", ""),
            clock=clock,
            imported_from={
                "node_id": node["node_id"],
                "public_key": node["public_key"],
                "exported_at": document["exported_at"],
            },
            seed=seed,  # None: a new identity
        )
        key = derive_vault_key(staging / KEY_FILE, passphrase)
        with Store(staging / DB_FILE, clock=clock) as store:
            with store.transaction():
                for table in RECORD_TABLES:
                    for index, row in enumerate(records[table]):
                        _insert(store, table, index, row)
                for entry, value in vault_values:
                    nonce, stored = seal(key, entry["name"], value) if key else (None, value.encode("utf-8"))
                    store.insert(
                        "vault",
                        {
                            "name": entry["name"],
                            "scheme": SCHEME_SEALED if key else SCHEME_PLAIN,
                            "nonce": nonce,
                            "value": stored,
                            "created_at": entry["created_at"],
                            "updated_at": entry["updated_at"],
                        },
                    )
                for index, row in enumerate(intent_rows):
                    try:
                        store.insert("intents", row)
                    except sqlite3.IntegrityError as exc:
                        raise ExchangeError(f"intents[{index}] cannot be stored: {exc}") from None
                data_counts = store_data(store, data_rows, author)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # our own half-built home, never the target
        raise
    counts = {table: len(records[table]) for table in RECORD_TABLES}
    counts["vault"] = len(vault_values)
    counts["intents"] = len(intent_rows)
    counts.update(data_counts)
    return ImportResult(home=load_home(target), counts=counts)


def _insert(store: Store, table: str, index: int, row: dict[str, Any]) -> None:
    try:
        store.insert(table, row)
    except sqlite3.IntegrityError as exc:
        raise ExchangeError(
            f"records.{table}[{index}] conflicts with the rest of the export: {exc}"
        ) from None
