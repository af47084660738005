"""The export's ``data`` and ``identity`` sections (node.exchange holds the document and the rest).

``data`` carries the node's federation and consent state, one list of rows per table, every column
under its name: ``peers``, ``blocked``, ``access_requests``, ``offers``, ``agreements`` (accepted
offers with both signed envelopes, on either side), ``grants``, ``receipts`` (the
person's own signed chain), ``receipt_copies`` (a vendor's copies of people's receipts),
``subscriptions`` and ``leads`` (a vendor's), and ``held_data``: for a vendor, the metadata of the data
it holds under grants (grant, field name, when it arrived) but never the values, which belong to the
people who granted them and are fetched again under their grants. BLOB columns (the signed
envelopes) are written as hex text. Rows are read with plain SQL over one snapshot.

Import checks every row against the current schema (exactly its columns, each of its type), the
signed envelope of every request, offer, grant and receipt copy (its signature, kind and id), every
agreement against the offer and acceptance it holds (both signatures, and the row they make), and the
receipt chain against the exported node's key (PROTOCOL.md section 10) before anything is stored.

``identity`` is an optional backup of the node's secret key: the key file (node.keystore, version 2)
sealed under a passphrase with Argon2id. Importing it makes the new home the same node (same node id),
so its intents, grants and receipts stay its own and the receipt chain goes on.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from node.errors import ExchangeError, IdentityError, PassphraseError
from node.keystore import (
    OWASP_ARGON2,
    Argon2Params,
    backup_document,
    load_identity,
    seed_from_backup,
)
from node.receipts import Receipts
from node.store import Store

# In insertion order (held_data refers to grants).
DATA_TABLES = (
    "peers",
    "blocked",
    "access_requests",
    "offers",
    "agreements",
    "grants",
    "receipts",
    "receipt_copies",
    "subscriptions",
    "leads",
    "held_data",
)
OMITTED_COLUMNS = {"held_data": ("value", "nonce")}  # never exported (sealed or not)
METADATA_ONLY = ("held_data",)  # exported for the record, not restored (its values are not in it)
# Tables whose rows are signed envelopes: (kind of the envelope in "raw"); the row's id is its id.
SIGNED_ROWS = {"access_requests": "request", "offers": "offer", "grants": "grant", "receipt_copies": "receipt"}


def table_columns(store: Store, table: str) -> dict[str, tuple[str, bool]]:
    """Column name -> (declared type, nullable) from the schema, less the omitted columns."""
    omitted = OMITTED_COLUMNS.get(table, ())
    return {
        c["name"]: (c["type"].upper(), not c["notnull"] and not c["pk"])
        for c in store.query(f"PRAGMA table_info({table})")
        if c["name"] not in omitted
    }


def export_data(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every DATA_TABLES row; the caller holds the snapshot (a transaction)."""
    out = {}
    for table in DATA_TABLES:
        columns = table_columns(store, table)
        names = ", ".join(columns)
        keys = sorted((c["pk"], c["name"]) for c in store.query(f"PRAGMA table_info({table})") if c["pk"])
        order = ", ".join(name for _, name in keys) or "rowid"  # some tables are WITHOUT ROWID
        rows = store.query(f"SELECT {names} FROM {table} ORDER BY {order}")
        out[table] = [
            {c: (bytes(v).hex() if columns[c][0] == "BLOB" and v is not None else v) for c, v in row.items()}
            for row in rows
        ]
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def check_data(section: Any, store: Store) -> dict[str, list[dict[str, Any]]]:
    """The rows of a ``data`` section in stored form (BLOBs as bytes), checked against ``store``'s
    schema; ExchangeError names the first bad row."""
    if section is None:
        return {table: [] for table in DATA_TABLES}
    if not isinstance(section, dict):
        raise ExchangeError("data must be an object of tables")
    unknown = sorted(set(section) - set(DATA_TABLES))
    if unknown:
        raise ExchangeError(f"data: unknown tables {unknown}")
    out: dict[str, list[dict[str, Any]]] = {}
    for table in DATA_TABLES:
        columns = table_columns(store, table)
        rows = section.get(table, [])
        if not isinstance(rows, list):
            raise ExchangeError(f"data.{table} must be a list")
        out[table] = []
        for index, row in enumerate(rows):
            where = f"data.{table}[{index}]"
            if not isinstance(row, dict) or set(row) != set(columns):
                raise ExchangeError(f"{where} must have exactly the columns {sorted(columns)}")
            stored = {}
            for column, value in row.items():
                kind, nullable = columns[column]
                if value is None and nullable:
                    stored[column] = None
                elif kind == "BLOB" and isinstance(value, str):
                    try:
                        stored[column] = bytes.fromhex(value)
                    except ValueError:
                        raise ExchangeError(f"{where}.{column} must be hex") from None
                elif (kind == "INTEGER" and _is_int(value)) or (kind == "TEXT" and isinstance(value, str)):
                    stored[column] = value
                else:
                    raise ExchangeError(f"{where}.{column} must be {kind.lower()}")
            if table in SIGNED_ROWS:
                _check_signed(where, stored, SIGNED_ROWS[table])
            if table == "agreements":
                _check_agreement(where, stored)
            out[table].append(stored)
    return out


def _check_signed(where: str, row: dict[str, Any], kind: str) -> None:
    """The row's envelope verifies (at its own creation time, so an expired one still proves who
    signed what), is of ``kind`` and is the row's id."""
    from node import envelope
    from node.backends import NATIVE
    from node.errors import VrmError

    try:
        raw = row["raw"]
        env = envelope.verify(raw, envelope.decode(raw).created, NATIVE.Verifier(1))
    except VrmError as exc:
        raise ExchangeError(f"{where}.raw: {exc}") from None
    if env.kind != kind or env.id.hex() != row.get("id"):
        raise ExchangeError(f"{where}.raw is not the signed {kind} of this row")


def _check_agreement(where: str, row: dict[str, Any]) -> None:
    """The row is exactly the agreement its two envelopes make, and both signatures verify."""
    from node import envelope
    from node.agreements import agreement_row
    from node.backends import NATIVE
    from node.errors import VrmError

    try:
        offer, accept = (
            envelope.verify(raw, envelope.decode(raw).created, NATIVE.Verifier(1))
            for raw in (row["offer_raw"], row["accept_raw"])
        )
        made = agreement_row(offer, accept)
    except (VrmError, TypeError) as exc:
        raise ExchangeError(f"{where}: not a signed offer and its acceptance ({exc})") from None
    if made != row:
        raise ExchangeError(f"{where} is not the agreement its offer and acceptance make")


def store_data(store: Store, rows: dict[str, list[dict[str, Any]]], author: bytes) -> dict[str, int]:
    """Insert checked rows (inside the caller's transaction) and verify the receipt chain against the
    exported node's key ``author``; counts per table restored."""
    counts = {}
    for table in DATA_TABLES:
        if table in METADATA_ONLY:
            continue
        for index, row in enumerate(rows[table]):
            try:
                store.insert(table, row)
            except sqlite3.IntegrityError as exc:
                raise ExchangeError(f"data.{table}[{index}] conflicts with the rest of the export: {exc}") from None
        counts[table] = len(rows[table])
    report = Receipts(store).verify(author)
    if not report.ok:
        raise ExchangeError(f"data.receipts: the receipt chain does not verify ({report.problem})")
    return counts


# -- identity backup -----------------------------------------------------------------------------------


def export_identity(
    key_path: Path, home_passphrase: str | None, backup_passphrase: str, *, kdf: Argon2Params = OWASP_ARGON2
) -> dict[str, Any]:
    """The key file sealed under ``backup_passphrase`` (the home's own passphrase, if it has one, is
    needed to open the key first)."""
    seed = load_identity(key_path, home_passphrase).seed()
    return backup_document(seed, backup_passphrase, kdf=kdf)


def identity_seed(section: Any, passphrase: str | None, public_key: bytes) -> bytes | None:
    """The seed in an ``identity`` section (None when there is none); it must be the exported node's."""
    if section is None:
        return None
    if passphrase is None:
        raise ExchangeError("the export holds an identity backup: give the passphrase it was sealed under")
    try:
        seed = seed_from_backup(section, passphrase)
    except PassphraseError:
        raise
    except IdentityError as exc:
        raise ExchangeError(f"identity: {exc}") from None
    from node.identity import Identity

    if Identity.from_seed(seed).public_key != public_key:
        raise ExchangeError("identity: the backup is not the key of the exported node")
    return seed
