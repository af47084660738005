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
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import (
    ExchangeError,
    HomeError,
    IdentityError,
    ValidationError,
    VaultError,
    VrmError,
)
from node import envelope as envelopes
from node.backends import NATIVE
from node.exchange_data import check_data, export_data, export_identity, identity_seed, store_data
from node.home import DB_FILE, KEY_FILE, HomeInfo, init_home, load_home
from node.intents import check_body, check_withdraw_body, intent_row
from node.keystore import (
    derive_vault_key,
    vault_kdf,
    vault_key_from_kdf,
    write_new_file,
)
from node.nodeid import encode_node_id
from node.records import (
    MAX_INT,
    RECORD_TABLES,
    canonical_node_id,
    normalize_handle,
    normalize_tags,
)
from node.store import Clock, Store, wall_clock_ms
from node.vault import SCHEME_PLAIN, SCHEME_SEALED, seal, unseal, validate_field_name

FORMAT = "vrm-export"
VERSION = 1
SECTIONS = ("records", "vault", "intents", "data", "identity")
INTENT_ENTRY = ("id", "text", "created", "expires", "envelope", "withdrawal")
_HEADER = ("format", "version", "exported_at", "schema_version", "node", "sections")


def _strict_bool(value: Any) -> int:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return int(value)


# Columns stored in a form JSON has a better word for: (to document, from document).
_COLUMN_FORMS: dict[tuple[str, str], tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    ("notes", "tags"): (json.loads, lambda tags: json.dumps(list(normalize_tags(tags)))),
    ("recommendations", "would_recommend"): (bool, _strict_bool),
}


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


def _check_header(document: Any, schema_version: int) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExchangeError(f"not a vrm export (format is not {FORMAT!r})")
    if document.get("version") != VERSION:
        raise ExchangeError(
            f"export version {document.get('version')!r} is not supported (this program reads {VERSION})"
        )
    unknown = sorted(set(document) - set(_HEADER))
    if unknown:
        raise ExchangeError(f"unknown top-level fields {unknown}")
    doc_schema = document.get("schema_version")
    if not _is_int(doc_schema) or not 1 <= doc_schema <= schema_version:
        raise ExchangeError(
            f"export schema version {doc_schema!r} is newer than this program ({schema_version}) or invalid"
        )
    if not _is_int(document.get("exported_at")):
        raise ExchangeError("exported_at must be an integer time")
    node = document.get("node")
    if (
        not isinstance(node, dict)
        or not isinstance(node.get("node_id"), str)
        or not isinstance(node.get("public_key"), str)
    ):
        raise ExchangeError("the node section must give node_id and public_key")
    try:
        key = bytes.fromhex(node["public_key"])
        consistent = key.hex() == node["public_key"] and encode_node_id(key) == node["node_id"]
    except (IdentityError, ValueError):
        consistent = False
    if not consistent:
        raise ExchangeError("the node section's node id and public key do not match")
    if node.get("role") not in ("person", "vendor"):
        raise ExchangeError(f"node role {node.get('role')!r} is unknown")
    if any(not isinstance(node.get(field, ""), str) for field in ("name", "handle")):
        raise ExchangeError("the node section's name and handle must be text")
    sections = document.get("sections")
    if not isinstance(sections, dict):
        raise ExchangeError("sections must be an object")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ExchangeError(
            f"the export holds sections this program cannot import: {unknown}; upgrade vrm-node"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_INT - 1 <= value <= MAX_INT


def _check_records(section: Any, columns: dict[str, dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """Rows per table in stored form; ExchangeError names the first bad row. Constraints the schema
    enforces (checks, references, uniqueness) are caught again on insert."""
    if not isinstance(section, dict):
        raise ExchangeError("records must be an object of tables")
    unknown = sorted(set(section) - set(RECORD_TABLES))
    if unknown:
        raise ExchangeError(f"records: unknown tables {unknown}")
    out: dict[str, list[dict[str, Any]]] = {}
    for table in RECORD_TABLES:
        rows = section.get(table, [])
        if not isinstance(rows, list):
            raise ExchangeError(f"records.{table} must be a list")
        out[table] = []
        for index, row in enumerate(rows):
            where = f"records.{table}[{index}]"
            if not isinstance(row, dict) or set(row) != set(columns[table]):
                raise ExchangeError(f"{where} must have exactly the columns {sorted(columns[table])}")
            try:
                stored = {
                    c: (_COLUMN_FORMS[(table, c)][1](v) if (table, c) in _COLUMN_FORMS else v)
                    for c, v in row.items()
                }
            except (VrmError, TypeError, ValueError) as exc:
                raise ExchangeError(f"{where}: {exc}") from None
            # SQLite would store "yesterday" in an INTEGER column; the document must not.
            for column, value in stored.items():
                wanted = _is_int if columns[table][column] == "INTEGER" else (lambda v: isinstance(v, str))
                if not (wanted(value) or (value is None and column != "id")):
                    raise ExchangeError(f"{where}.{column} must be {columns[table][column].lower()}")
            if table == "vendors":
                try:
                    if (
                        normalize_handle(stored["handle"]) != stored["handle"]
                        or canonical_node_id(stored["node_id"]) != stored["node_id"]
                    ):
                        raise ExchangeError(f"{where}: handle or node id is not in canonical form")
                except (ValidationError, IdentityError) as exc:
                    raise ExchangeError(f"{where}: {exc}") from None
            out[table].append(stored)
    return out


def _open_vault_section(section: Any, passphrase: str | None) -> list[tuple[dict[str, Any], str]]:
    """(entry, plaintext value) for every vault entry, opening sealed ones with the source key."""
    if section is None:
        return []
    if not isinstance(section, dict) or not isinstance(section.get("entries"), list):
        raise ExchangeError("vault must be an object with a list of entries")
    key = None
    if section.get("encrypted"):
        if passphrase is None:
            raise ExchangeError("the export's vault is encrypted: give the passphrase it was exported under")
        try:
            key = vault_key_from_kdf(section.get("kdf"), passphrase)
        except IdentityError as exc:
            raise ExchangeError(f"vault kdf: {exc}") from None
    out, seen = [], set()
    for index, entry in enumerate(section["entries"]):
        where = f"vault.entries[{index}]"
        if (
            not isinstance(entry, dict)
            or not _is_int(entry.get("created_at"))
            or not _is_int(entry.get("updated_at"))
        ):
            raise ExchangeError(f"{where} must have a name and integer times")
        try:
            name = validate_field_name(entry.get("name"))
        except ValidationError as exc:
            raise ExchangeError(f"{where}: {exc}") from None
        if name in seen:
            raise ExchangeError(f"{where}: duplicate field {name!r}")
        seen.add(name)
        if set(entry) == {"name", "created_at", "updated_at", "value"} and isinstance(entry["value"], str):
            value = entry["value"]
        elif set(entry) == {"name", "created_at", "updated_at", "nonce", "ciphertext"} and key is not None:
            try:
                value = unseal(key, name, bytes.fromhex(entry["nonce"]), bytes.fromhex(entry["ciphertext"]))
            except (TypeError, ValueError, VaultError) as exc:
                raise ExchangeError(f"{where}: {exc}") from None
        else:
            raise ExchangeError(
                f"{where} must carry a text value, or nonce and ciphertext in an encrypted vault"
            )
        out.append((entry, value))
    return out


def _signed(where: str, text: Any, kind: str) -> envelopes.Envelope:
    """The envelope in hex ``text``, its signature checked at its own creation time (so an expired
    one still proves who signed what)."""
    try:
        raw = bytes.fromhex(text) if isinstance(text, str) else None
    except ValueError:
        raw = None
    if raw is None:
        raise ExchangeError(f"{where} must be a hex envelope")
    try:
        decoded = envelopes.decode(raw)
        env = envelopes.verify(raw, decoded.created, NATIVE.Verifier(1))
    except VrmError as exc:
        raise ExchangeError(f"{where}: {exc}") from None
    if env.kind != kind:
        raise ExchangeError(f"{where} is a {env.kind!r} envelope, not {kind!r}")
    return env


def _check_intents(section: Any) -> list[dict[str, Any]]:
    """The ``intents`` rows of the section, every envelope and withdrawal verified."""
    if not isinstance(section, list):
        raise ExchangeError("intents must be a list")
    out, seen = [], set()
    for index, entry in enumerate(section):
        where = f"intents[{index}]"
        if not isinstance(entry, dict) or set(entry) != set(INTENT_ENTRY):
            raise ExchangeError(f"{where} must have exactly the fields {sorted(INTENT_ENTRY)}")
        env = _signed(f"{where}.envelope", entry["envelope"], "intent")
        try:
            check_body(env.body)
        except ValidationError as exc:
            raise ExchangeError(f"{where}: {exc}") from None
        row = intent_row(env, env.body)
        stated = (entry["id"], entry["text"], entry["created"], entry["expires"])
        if stated != (row["id"], row["text"], row["created_at"], row["expires_at"]):
            raise ExchangeError(f"{where}: id, text, created or expires differ from the envelope's")
        if row["id"] in seen:
            raise ExchangeError(f"{where}: intent {row['id']} appears twice")
        seen.add(row["id"])
        if entry["withdrawal"] is not None:
            withdrawal = _signed(f"{where}.withdrawal", entry["withdrawal"], "withdraw")
            try:
                target, reason = check_withdraw_body(withdrawal.body)
            except ValidationError:
                target, reason = None, None
            if withdrawal.author != env.author or target != env.id or withdrawal.expires != env.expires:
                raise ExchangeError(f"{where}.withdrawal does not withdraw this intent (PROTOCOL.md section 5)")
            row.update(
                status="withdrawn",
                withdrawn_at=withdrawal.created,
                withdrawal_id=withdrawal.id.hex(),
                withdrawal_raw=withdrawal.raw,
                withdraw_reason=reason,
            )
        out.append(row)
    return out


def _insert(store: Store, table: str, index: int, row: dict[str, Any]) -> None:
    try:
        store.insert(table, row)
    except sqlite3.IntegrityError as exc:
        raise ExchangeError(
            f"records.{table}[{index}] conflicts with the rest of the export: {exc}"
        ) from None
