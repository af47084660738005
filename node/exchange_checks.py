"""What ``node.exchange.import_home`` checks before it creates anything: the document's header, the
``records`` rows against the current schema, the ``vault`` entries (sealed ones opened with the source
key) and the ``intents`` with every signature verified; and the document's fixed names. ExchangeError
names the first bad field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from node import envelope as envelopes
from node.backends import NATIVE
from node.errors import ExchangeError, IdentityError, ValidationError, VaultError, VrmError
from node.intents import check_body, check_withdraw_body, intent_row
from node.keystore import vault_key_from_kdf
from node.nodeid import encode_node_id
from node.records import MAX_INT, RECORD_TABLES, canonical_node_id, normalize_handle, normalize_tags
from node.vault import unseal, validate_field_name

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
