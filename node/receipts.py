"""Receipts: the person's hash-chained, signed log of every access, push and refusal of her data.

Each receipt is a ``receipt`` envelope signed by the person's node and addressed to the vendor it is
about (who gets a copy): ``{"to", "seq", "prev", "grant", "fields", "purpose", "at", "outcome"}``. The
receipt numbered n carries ``prev`` = the id of receipt n−1 (32 zero bytes for n = 1), so each entry
commits to the whole log before it. ``append`` joins the caller's transaction, so an access and its
receipt commit together. ``verify`` re-checks the stored log against the node's public key and names
the first problem: an edited column, an envelope that does not verify, a missing or moved entry.
Receipts name fields, never their values.

A vendor keeps the copies it receives (``copy_received``) in ``receipt_copies``.

What the chain cannot show by itself: entries cut off its end (the last ones) leave a shorter,
consistent chain. The copies the vendors hold, and an exported log, are the witnesses of those.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from node import envelope
from node.backends import NATIVE, Backend
from node.envelope import Envelope
from node.errors import EnvelopeError, ValidationError
from node.identity import Identity
from node.nodeid import encode_node_id
from node.reasons import Reason
from node.store import Clock, Store, wall_clock_ms
from node.vault import FIELD_NAME

RECEIPT_KEYS = ("at", "fields", "grant", "outcome", "prev", "purpose", "seq", "to")
OUTCOMES = ("ok", "pushed", "no_grant", "not_grantee", "expired", "revoked", "out_of_scope", "budget_spent")
NO_GRANT_ID = bytes(32)  # a receipt's grant when the access named no grant this node gave
FIRST_PREV = bytes(32)  # the prev of receipt 1
RECEIPT_TTL_MS = 10 * 365 * 86_400_000
MAX_FIELDS = 32
MAX_PURPOSE = 500
EXPORT_FORMAT = "vrm-receipts"
EXPORT_VERSION = 1
_MAX_UINT = 2**63 - 1
_COLUMNS = ("id", "prev", "grant_id", "vendor", "fields", "purpose", "at", "outcome")


@dataclass(frozen=True)
class Receipt:
    """One receipt, as stored. Ids and keys are hex; ``person`` is its signer (our own key for our
    chain); ``copy`` says it is a vendor's copy of somebody else's receipt."""

    seq: int
    id: str
    prev: str
    grant: str
    vendor: str
    person: str
    fields: tuple[str, ...]
    purpose: str
    at: int
    outcome: str
    raw: bytes
    copy: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "prev": self.prev,
            "grant": self.grant,
            "vendor": self.vendor,
            "vendor_node_id": encode_node_id(bytes.fromhex(self.vendor)),
            "person": self.person,
            "fields": list(self.fields),
            "purpose": self.purpose,
            "at": self.at,
            "outcome": self.outcome,
            "copy": self.copy,
            "envelope": self.raw.hex(),
        }


@dataclass(frozen=True)
class VerifyReport:
    """What ``Receipts.verify`` found. ``ok`` with ``count`` receipts checked, or the first problem:
    the row ``seq`` where it shows, ``what`` (``malformed``, ``forged``, ``bad_signature``, ``edited``,
    ``reordered``: a row holding another number's receipt, ``gap``: receipts removed before it,
    ``prev_mismatch``: not linked to the one before) and ``problem``, a sentence saying it."""

    ok: bool
    count: int
    seq: int | None = None
    what: str | None = None
    problem: str | None = None


def check_receipt_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``receipt`` body; ValidationError naming the field otherwise."""
    if not isinstance(body, dict) or sorted(body) != list(RECEIPT_KEYS):
        raise ValidationError("body", f"must be a map with exactly the keys {', '.join(RECEIPT_KEYS)}")
    for key in ("to", "prev", "grant"):
        if not isinstance(body[key], bytes) or len(body[key]) != 32:
            raise ValidationError(key, "must be 32 bytes")
    for key, low in (("seq", 1), ("at", 0)):
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MAX_UINT:
            raise ValidationError(key, f"must be a whole number from {low} to 2^63-1")
    if body["seq"] == 1 and body["prev"] != FIRST_PREV:
        raise ValidationError("prev", "the first receipt's prev is 32 zero bytes")
    fields = body["fields"]
    if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
        raise ValidationError("fields", f"must be a list of at most {MAX_FIELDS} field names")
    if not all(isinstance(f, str) and FIELD_NAME.fullmatch(f) for f in fields) or any(
        a >= b for a, b in zip(fields, fields[1:])
    ):
        raise ValidationError("fields", "must be field names, distinct and sorted ascending")
    purpose = body["purpose"]
    if not isinstance(purpose, str) or len(purpose) > MAX_PURPOSE or (purpose and not purpose.strip()):
        raise ValidationError("purpose", f"must be text of at most {MAX_PURPOSE} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in purpose):
        raise ValidationError("purpose", "must not contain control characters")
    if body["outcome"] not in OUTCOMES or not isinstance(body["outcome"], str):
        raise ValidationError("outcome", f"must be one of {', '.join(OUTCOMES)}")
    return body


def _columns(env: Envelope) -> dict[str, Any]:
    """The stored columns of a receipt envelope (its body checked)."""
    body = env.body
    return {
        "id": env.id.hex(),
        "prev": body["prev"].hex(),
        "grant_id": body["grant"].hex(),
        "vendor": body["to"].hex(),
        "fields": json.dumps(body["fields"]),
        "purpose": body["purpose"],
        "at": body["at"],
        "outcome": body["outcome"],
    }


def _receipt(row: dict[str, Any], person: str, copy: bool) -> Receipt:
    return Receipt(
        seq=row["seq"],
        id=row["id"],
        prev=row["prev"],
        grant=row["grant_id"],
        vendor=row["vendor"],
        person=person,
        fields=tuple(json.loads(row["fields"])),
        purpose=row["purpose"],
        at=row["at"],
        outcome=row["outcome"],
        raw=bytes(row["raw"]),
        copy=copy,
    )


class Receipts:
    """The receipt chain (and received copies) of one Store."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self._store = store
        self._clock = clock
        self._backend = backend

    def append(
        self,
        identity: Identity,
        *,
        to: bytes,
        grant: bytes,
        fields: Sequence[str],
        purpose: str,
        outcome: str,
    ) -> Envelope:
        """Sign the next receipt of the chain and keep it; it joins the caller's transaction."""
        with self._store.transaction():
            last = self._store.query_one("SELECT seq, id FROM receipts ORDER BY seq DESC LIMIT 1")
            now = self._clock()
            body = check_receipt_body(
                {
                    "to": bytes(to) if isinstance(to, (bytes, bytearray)) else to,
                    "seq": 1 if last is None else last["seq"] + 1,
                    "prev": FIRST_PREV if last is None else bytes.fromhex(last["id"]),
                    "grant": bytes(grant) if isinstance(grant, (bytes, bytearray)) else grant,
                    "fields": sorted(set(fields)) if isinstance(fields, (list, tuple)) else fields,
                    "purpose": purpose,
                    "at": now,
                    "outcome": outcome,
                }
            )
            signed = envelope.create(
                identity, "receipt", body, created=now, ttl_ms=RECEIPT_TTL_MS, backend=self._backend
            )
            self._store.insert("receipts", {"seq": body["seq"], **_columns(signed), "raw": signed.raw})
        return signed

    def list(self, *, vendor: str | None = None) -> list[Receipt]:
        """Our own chain in order, then the copies we received (by person, then number); only those
        about ``vendor`` (hex key) when given."""
        where, params = ("", []) if vendor is None else (" WHERE vendor = ?", [vendor])
        own = self._store.query("SELECT * FROM receipts" + where + " ORDER BY seq", params)
        person = envelope.decode(bytes(own[0]["raw"]), self._backend).author.hex() if own else ""
        copies = self._store.query("SELECT * FROM receipt_copies" + where + " ORDER BY person, seq, id", params)
        return [_receipt(r, person, False) for r in own] + [_receipt(r, r["person"], True) for r in copies]

    def verify(self, public_key: bytes) -> VerifyReport:
        """Check our chain against the node's ``public_key``: every envelope decodes, is a receipt
        signed by that key, matches its stored columns and number, and follows the one before it."""
        rows = self._store.query("SELECT * FROM receipts ORDER BY seq")
        expected, prev = 1, FIRST_PREV.hex()
        for row in rows:
            seq = row["seq"]
            try:
                (_v, kind, author, _c, _e, body, sig, signed, env_id) = self._backend.decode_envelope(bytes(row["raw"]))
            except EnvelopeError as exc:
                return _broken(len(rows), seq, "malformed", f"the stored envelope does not decode ({exc.reason.label})")
            if author != bytes(public_key):
                return _broken(len(rows), seq, "forged", "signed by another key than this node's")
            if not self._backend.ed25519_verify(bytes(public_key), signed, sig):
                return _broken(len(rows), seq, "bad_signature", "the signature does not verify: it was altered")
            if kind != "receipt":
                return _broken(len(rows), seq, "malformed", f"the envelope is a {kind!r}, not a receipt")
            try:
                check_receipt_body(body)
            except ValidationError as exc:
                return _broken(len(rows), seq, "malformed", f"the signed body is not a receipt ({exc})")
            env = Envelope(_v, kind, author, _c, _e, body, sig, env_id, bytes(row["raw"]))
            signed_columns = _columns(env)
            for column in _COLUMNS:
                if row[column] != signed_columns[column]:
                    return _broken(len(rows), seq, "edited", f"column {column} differs from the signed receipt")
            # Rows are read in seq order and each row's seq is its signed number, so numbers only rise:
            # a row moved shows here, one removed as the gap it leaves.
            if body["seq"] != seq:
                return _broken(len(rows), seq, "reordered", f"row {seq} holds signed receipt {body['seq']}")
            if seq != expected:
                return _broken(len(rows), seq, "gap", f"receipt {expected} is missing before {seq}")
            if body["prev"].hex() != prev:
                return _broken(len(rows), seq, "prev_mismatch", "its prev is not the id of the receipt before it")
            expected, prev = expected + 1, row["id"]
        return VerifyReport(ok=True, count=len(rows))

    def export(self) -> dict[str, Any]:
        """The whole chain in an open JSON format: each receipt decoded, with its signed envelope (hex)
        to check it independently (PROTOCOL.md sections 1 and 2, and the receipt chain's rules)."""
        own = [r for r in self.list() if not r.copy]
        author = own[0].person if own else None
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "person": author,
            "person_node_id": None if author is None else encode_node_id(bytes.fromhex(author)),
            "exported_at": self._clock(),
            "count": len(own),
            "head": own[-1].id if own else None,
            "chain": "receipt n has prev = id of receipt n-1 (64 zeros for n = 1); id = SHA-256 of the signed bytes",
            "receipts": [
                {
                    "seq": r.seq,
                    "id": r.id,
                    "prev": r.prev,
                    "grant": r.grant,
                    "vendor": r.vendor,
                    "vendor_node_id": encode_node_id(bytes.fromhex(r.vendor)),
                    "fields": list(r.fields),
                    "purpose": r.purpose,
                    "at": r.at,
                    "outcome": r.outcome,
                    "envelope": r.raw.hex(),
                }
                for r in own
            ],
        }

    def copy_received(self, env: Envelope, *, me: bytes | None = None) -> Reason:
        """Keep a copy of a person's receipt addressed to us (a vendor). Refusals: ``invalid_body``;
        ``not_for_role`` (``to`` is not ``me``, when given); ``duplicate`` (already kept)."""
        body, refusal = envelope.addressed_body(env, "receipt", check_receipt_body, me)
        if body is None:
            return refusal
        if self._store.query_one("SELECT 1 FROM receipt_copies WHERE id = ?", [env.id.hex()]) is not None:
            return Reason.DUPLICATE
        with self._store.transaction():
            self._store.insert(
                "receipt_copies",
                {
                    **_columns(env),
                    "person": env.author.hex(),
                    "seq": body["seq"],
                    "raw": env.raw,
                    "received_at": self._clock(),
                },
            )
        return Reason.OK


def _broken(count: int, seq: int, what: str, detail: str) -> VerifyReport:
    return VerifyReport(ok=False, count=count, seq=seq, what=what, problem=f"{what}: {detail}")
