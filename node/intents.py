"""Intents: what the person wants, signed, expiring and withdrawable (PROTOCOL.md section 5).

``parse_intent`` tokenizes a text (natively by default) into a ParsedIntent; ``Intents`` casts one — the
parsed body, the person's terms and an expiry signed as an ``intent`` envelope — keeps it in the store,
lists and finds them, and withdraws one with a signed ``withdraw`` envelope. Every method checks its
whole input first and writes in one transaction: bad input raises a typed error (IntentSyntaxError,
ValidationError, NotFoundError, ConflictError) and changes nothing.

Status is ``live``, ``withdrawn`` or ``expired``; only withdrawal is stored, expiry follows from the
injected clock (an intent is dead from the instant ``expires``, as for every envelope).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from node import envelope
from node.backends import NATIVE, Backend
from node.errors import ConflictError, IntentSyntaxError, NotFoundError, ValidationError
from node.identity import Identity
from node.prefix import row_by_prefix
from node.store import Clock, Store, wall_clock_ms

KNOWN_TERMS: tuple[str, ...] = (
    "contact-only-about-this",  # a vendor may contact me about this intent only
    "no-resale",  # my data is not sold or handed on
    "delete-after-use",  # delete my data once the deal is done
    "no-profiling",  # no profile of me is built from it
    "no-third-parties",  # nobody else sees it (no partners, no brokers)
)
INTENT_STATUSES = ("live", "withdrawn", "expired", "all")
# Why a withdrawal ended an intent, when it says (PROTOCOL.md section 5): "fulfilled" when the person
# accepted an offer for it (the deal is done). A withdrawal without a reason is a plain one.
WITHDRAW_REASONS = ("fulfilled",)
BODY_KEYS = ("constraints", "handles", "tags", "terms", "text", "tokens", "words")

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
MIN_TTL_MS = MINUTE_MS
MAX_TTL_MS = 365 * DAY_MS
DEFAULT_TTL_MS = 7 * DAY_MS

_UNITS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}
_DURATION = re.compile(r"([0-9]{1,9})\s*([mhdw])", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedIntent:
    """What the tokenizer understood. Names are lower-cased and carry no sigil (``"flight"`` for
    ``?flight``); ``constraints`` maps each key, in order of appearance, to its typed value."""

    text: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    handles: tuple[str, ...]
    constraints: dict[str, dict[str, Any]]
    words: tuple[str, ...]

    @classmethod
    def from_dict(cls, parsed: Mapping[str, Any]) -> ParsedIntent:
        return cls(
            text=parsed["text"],
            tokens=tuple(parsed["tokens"]),
            tags=tuple(parsed["tags"]),
            handles=tuple(parsed["handles"]),
            constraints={k: dict(v) for k, v in parsed["constraints"].items()},
            words=tuple(parsed["words"]),
        )

    def body(self, terms: Iterable[str] = ()) -> dict[str, Any]:
        """The ``intent`` envelope body of PROTOCOL.md section 5."""
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "tags": list(self.tags),
            "handles": list(self.handles),
            "constraints": {k: dict(v) for k, v in self.constraints.items()},
            "words": list(self.words),
            "terms": list(terms),
        }


@dataclass(frozen=True)
class IntentRecord:
    """A stored intent. ``raw`` is the signed ``intent`` envelope, ``withdrawal_raw`` the signed
    ``withdraw`` envelope once there is one; ``author`` is the hex public key that signed them."""

    id: str  # hex
    text: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    handles: tuple[str, ...]
    constraints: dict[str, dict[str, Any]]
    words: tuple[str, ...]
    terms: tuple[str, ...]
    created: int  # ms
    expires: int  # ms
    status: str  # "live" | "withdrawn" | "expired"
    withdrawn_at: int | None
    withdrawal_id: str | None  # hex
    raw: bytes
    author: str = ""  # hex
    withdrawal_raw: bytes | None = None
    withdraw_reason: str | None = None  # "fulfilled", or None for a plain withdrawal

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form with stable keys; bytes as hex."""
        return {
            "id": self.id,
            "text": self.text,
            "tokens": list(self.tokens),
            "tags": list(self.tags),
            "handles": list(self.handles),
            "constraints": {k: dict(v) for k, v in self.constraints.items()},
            "words": list(self.words),
            "terms": list(self.terms),
            "created": self.created,
            "expires": self.expires,
            "status": self.status,
            "withdrawn_at": self.withdrawn_at,
            "withdrawal_id": self.withdrawal_id,
            "author": self.author,
            "raw": self.raw.hex(),
            "withdrawal_raw": None if self.withdrawal_raw is None else self.withdrawal_raw.hex(),
            "withdraw_reason": self.withdraw_reason,
        }


# -- parsing and validation -------------------------------------------------------------------------


def parse_intent(text: str, *, backend: Backend = NATIVE) -> ParsedIntent:
    """Tokenize ``text`` (PROTOCOL.md section 5); IntentSyntaxError names the offending word and its
    character offset."""
    if not isinstance(text, str):
        raise IntentSyntaxError("the intent must be text")
    return ParsedIntent.from_dict(backend.parse_intent(text))


def parse_duration(text: str) -> int:
    """``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` → milliseconds, between 1 minute and 365 days."""
    if not isinstance(text, str):
        raise ValidationError("expires", "give a duration such as 30m, 12h, 7d or 2w")
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValidationError("expires", f"{text!r} is not a duration such as 30m, 12h, 7d or 2w")
    return check_ttl(int(match[1]) * _UNITS[match[2].lower()])


def check_ttl(ttl_ms: object) -> int:
    """An intent's lifetime in ms, within MIN_TTL_MS .. MAX_TTL_MS."""
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int):
        raise ValidationError("expires", "the lifetime must be a whole number of milliseconds")
    if not MIN_TTL_MS <= ttl_ms <= MAX_TTL_MS:
        raise ValidationError("expires", "an intent lives between 1 minute and 365 days")
    return ttl_ms


def normalize_terms(terms: Iterable[str] | str) -> tuple[str, ...]:
    """Known terms, lower-cased, duplicates dropped, in the order given. A single string is split on
    commas and white space."""
    items = re.split(r"[,\s]+", terms) if isinstance(terms, str) else terms
    if not isinstance(items, Iterable):
        raise ValidationError("terms", "give a list of terms")
    out: list[str] = []
    for term in items:
        if not isinstance(term, str):
            raise ValidationError("terms", "each term must be text")
        name = term.strip().lower()
        if not name:
            continue
        if name not in KNOWN_TERMS:
            raise ValidationError("terms", f"unknown term {term!r}; known terms: {', '.join(KNOWN_TERMS)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def check_body(body: object, *, backend: Backend = NATIVE) -> tuple[ParsedIntent, tuple[str, ...]]:
    """The parsed intent and terms of an ``intent`` envelope body; ValidationError unless the body is
    exactly what section 5 prescribes for its text (the receiver's check)."""
    if not isinstance(body, dict) or sorted(body) != list(BODY_KEYS):
        raise ValidationError("body", f"an intent body has exactly the keys {', '.join(BODY_KEYS)}")
    parsed = parse_intent(body["text"], backend=backend) if isinstance(body["text"], str) else None
    terms = body["terms"]
    if (
        parsed is None
        or not isinstance(terms, list)
        or normalize_terms(terms) != tuple(terms)
        or parsed.body(terms) != body
    ):
        raise ValidationError("body", "the body is not what its text and terms give")
    return parsed, tuple(terms)


def check_withdraw_body(body: object) -> tuple[bytes, str | None]:
    """(intent id, reason or None) of a ``withdraw`` body: ``{"intent": id}`` or, with a reason,
    ``{"intent": id, "reason": "fulfilled"}`` (PROTOCOL.md section 5); ValidationError otherwise."""
    if not isinstance(body, dict) or sorted(body) not in (["intent"], ["intent", "reason"]):
        raise ValidationError("body", "a withdraw body is {intent} or {intent, reason}")
    target = body["intent"]
    if not isinstance(target, bytes) or len(target) != 32:
        raise ValidationError("intent", "must be 32 bytes")
    reason = body.get("reason")
    if "reason" in body and reason not in WITHDRAW_REASONS:
        raise ValidationError("reason", f"a withdrawal's reason is one of {', '.join(WITHDRAW_REASONS)}")
    return target, reason


def withdraw_body(intent_id: bytes, reason: str | None = None) -> dict[str, Any]:
    """The checked ``withdraw`` body for ``intent_id``, with ``reason`` when one is given."""
    body: dict[str, Any] = {"intent": intent_id} if reason is None else {"intent": intent_id, "reason": reason}
    check_withdraw_body(body)
    return body


# -- the store ---------------------------------------------------------------------------------------


def _record(row: dict[str, Any], now: int) -> IntentRecord:
    body = json.loads(row["body"])
    if row["status"] == "withdrawn":
        status = "withdrawn"
    else:
        status = "expired" if row["expires_at"] <= now else "live"
    return IntentRecord(
        id=row["id"],
        text=row["text"],
        tokens=tuple(body["tokens"]),
        tags=tuple(body["tags"]),
        handles=tuple(body["handles"]),
        constraints=body["constraints"],
        words=tuple(body["words"]),
        terms=tuple(body["terms"]),
        created=row["created_at"],
        expires=row["expires_at"],
        status=status,
        withdrawn_at=row["withdrawn_at"],
        withdrawal_id=row["withdrawal_id"],
        raw=bytes(row["raw"]),
        author=row["author"],
        withdrawal_raw=None if row["withdrawal_raw"] is None else bytes(row["withdrawal_raw"]),
        withdraw_reason=row.get("withdraw_reason"),
    )


def intent_row(env: envelope.Envelope, body: dict[str, Any]) -> dict[str, Any]:
    """The ``intents`` row of a signed intent envelope (not withdrawn)."""
    return {
        "id": env.id.hex(),
        "author": env.author.hex(),
        "text": body["text"],
        "body": json.dumps(body, ensure_ascii=False, sort_keys=True),
        "raw": env.raw,
        "created_at": env.created,
        "expires_at": env.expires,
        "status": "live",
    }


class Intents:
    """The person's intents over one Store, signed with the identity given to each write."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self._store = store
        self._clock = clock
        self._backend = backend

    def cast(
        self,
        identity: Identity,
        text: str,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
        terms: Iterable[str] | str = (),
    ) -> IntentRecord:
        """Parse ``text``, sign it with ``terms`` as an ``intent`` envelope living ``ttl_ms``, store it."""
        parsed = parse_intent(text, backend=self._backend)
        terms = normalize_terms(terms)
        ttl_ms = check_ttl(ttl_ms)
        now = self._clock()
        body = parsed.body(terms)
        signed = envelope.create(
            identity, "intent", body, created=now, expires=now + ttl_ms, backend=self._backend
        )
        try:
            with self._store.transaction():
                self._store.insert("intents", intent_row(signed, body))
        except sqlite3.IntegrityError:
            raise ConflictError("this very intent was already cast in the same millisecond") from None
        return self._by_id(signed.id.hex(), now)

    def list(self, *, status: str = "live") -> list[IntentRecord]:
        """Intents, oldest first: ``"live"`` (default), ``"withdrawn"``, ``"expired"`` or ``"all"``."""
        if status not in INTENT_STATUSES:
            raise ValidationError("status", f"{status!r} is not one of {', '.join(INTENT_STATUSES)}")
        now = self._clock()
        where, params = {
            "live": ("WHERE status = 'live' AND expires_at > ?", [now]),
            "expired": ("WHERE status = 'live' AND expires_at <= ?", [now]),
            "withdrawn": ("WHERE status = 'withdrawn'", []),
            "all": ("", []),
        }[status]
        rows = self._store.query(f"SELECT * FROM intents {where} ORDER BY created_at, id", params)
        return [_record(r, now) for r in rows]

    def get(self, ref: str) -> IntentRecord:
        """The intent with id ``ref``, or the only one whose id starts with ``ref`` (6+ hex characters)."""
        return _record(self._row(ref), self._clock())

    def withdraw(self, identity: Identity, ref: str, *, reason: str | None = None) -> IntentRecord:
        """Sign a ``withdraw`` envelope for a live intent (same author, same expiry) and mark it withdrawn;
        ``reason`` (``"fulfilled"``) says why, in the signed body. Joins the caller's transaction."""
        if reason is not None and reason not in WITHDRAW_REASONS:
            raise ValidationError("reason", f"a withdrawal's reason is one of {', '.join(WITHDRAW_REASONS)}")
        row = self._row(ref)
        now = self._clock()
        current = _record(row, now)
        short = current.id[:12]
        if current.status == "withdrawn":
            raise ConflictError(f"intent {short} is already withdrawn")
        if current.status == "expired":
            raise ConflictError(f"intent {short} has expired; there is nothing left to withdraw")
        if identity.public_key.hex() != current.author:
            raise ConflictError(f"intent {short} was signed by another identity; only its author can withdraw it")
        signed = envelope.create(
            identity,
            "withdraw",
            withdraw_body(bytes.fromhex(current.id), reason),
            created=now,
            expires=current.expires,
            backend=self._backend,
        )
        with self._store.transaction():
            changed = self._store.execute(
                "UPDATE intents SET status = 'withdrawn', withdrawn_at = ?, withdrawal_id = ?, withdrawal_raw = ?,"
                " withdraw_reason = ? WHERE id = ? AND status = 'live'",
                [signed.created, signed.id.hex(), signed.raw, reason, current.id],
            )
            if changed != 1:
                raise ConflictError(f"intent {short} is already withdrawn")
        return self._by_id(current.id, now)

    # -- lookups -------------------------------------------------------------------------------------

    def _by_id(self, intent_id: str, now: int) -> IntentRecord:
        row = self._store.query_one("SELECT * FROM intents WHERE id = ?", [intent_id])
        if row is None:
            raise NotFoundError("intent", intent_id)
        return _record(row, now)

    def _row(self, ref: object) -> dict[str, Any]:
        return row_by_prefix(self._store, "intents", "intent", ref)
