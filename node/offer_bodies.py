"""The exact bodies of ``offer`` (versions 1 and 2) and of ``accept``/``decline`` (PROTOCOL.md section 8).

``check_offer_body`` and ``check_decision_body`` return the body when it is exactly of its kind's
shape and raise ValidationError naming the first offending field otherwise; ``offer_body`` builds a
checked one; ``offer_terms`` and ``missing_terms`` read what an offer agrees to against its intent.
"""

from __future__ import annotations

import re
from typing import Any

from node.errors import ValidationError
from node.intents import normalize_terms

OFFER_KEYS = ("intent", "price", "text", "to", "vendor")  # body version 1: no terms
OFFER_V2_KEYS = ("intent", "price", "terms", "text", "to", "v", "vendor")  # version 2: terms agreed
OFFER_VERSION = 2  # what this node makes
MAX_TERMS = 32
DECISION_KEYS = ("intent", "offer", "to")
PRICE_KEYS = ("cur", "money")
VENDOR_KEYS = ("handle", "name")
MAX_TEXT = 1000
MAX_NAME = 200
MIN_TTL_MS = 60_000
MAX_TTL_MS = 365 * 86_400_000
HANDLE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")  # node.records.HANDLE without its '@'
CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_INT = 2**63 - 1


def _exact_map(value: object, keys: tuple[str, ...], field: str) -> dict[str, Any]:
    if not isinstance(value, dict) or sorted(value) != list(keys):
        raise ValidationError(field, f"must be a map with exactly the keys {', '.join(keys)}")
    return value


def _id(value: object, field: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValidationError(field, "must be 32 bytes")
    return value


def _line(value: object, field: str, max_len: int, *, multiline: bool = False) -> str:
    """Text of 1..max_len characters with something besides white space, valid UTF-8, and no control
    characters (a multi-line text may hold line breaks and tabs)."""
    allowed = "\n\r\t" if multiline else ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be non-empty text")
    if len(value) > max_len:
        raise ValidationError(field, f"longer than {max_len} characters")
    if any((ord(c) < 32 or ord(c) == 127) and c not in allowed for c in value):
        raise ValidationError(field, "must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "is not valid Unicode text") from None
    return value


def check_offer_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly an ``offer`` body of version 1 or 2 (PROTOCOL.md section 8);
    ValidationError naming the first offending field otherwise."""
    if isinstance(body, dict) and "v" in body:
        body = _exact_map(body, OFFER_V2_KEYS, "body")
        if isinstance(body["v"], bool) or body["v"] != OFFER_VERSION:
            raise ValidationError("v", f"the offer body versions known are 1 (no v) and {OFFER_VERSION}")
        terms = body["terms"]
        if not isinstance(terms, list) or len(terms) > MAX_TERMS:
            raise ValidationError("terms", "must be a list of the intent's terms")
        try:
            known = normalize_terms(terms)
        except ValidationError:
            raise ValidationError("terms", "must be distinct known terms (PROTOCOL.md section 5)") from None
        if known != tuple(terms):
            raise ValidationError("terms", "must be distinct known terms (PROTOCOL.md section 5)")
    else:
        body = _exact_map(body, OFFER_KEYS, "body")
    _id(body["intent"], "intent")
    _id(body["to"], "to")
    price = _exact_map(body["price"], PRICE_KEYS, "price")
    money = price["money"]
    if isinstance(money, bool) or not isinstance(money, int) or not 0 <= money <= _MAX_INT:
        raise ValidationError("price.money", "must be a whole number of minor units, 0 to 2^63-1")
    if not isinstance(price["cur"], str) or not CURRENCY.fullmatch(price["cur"]):
        raise ValidationError("price.cur", "must be a currency code of 3 upper-case letters A-Z")
    _line(body["text"], "text", MAX_TEXT, multiline=True)
    vendor = _exact_map(body["vendor"], VENDOR_KEYS, "vendor")
    if not isinstance(vendor["handle"], str) or not HANDLE.fullmatch(vendor["handle"]):
        raise ValidationError("vendor.handle", "must be 1 to 63 of a-z 0-9 _ . - (first a letter or digit)")
    _line(vendor["name"], "vendor.name", MAX_NAME)
    return body


def offer_terms(body: dict[str, Any]) -> tuple[str, ...]:
    """The terms a checked offer body agrees to (none for a version 1 body)."""
    return tuple(body.get("terms", ()))


def missing_terms(intent_terms: object, offer_terms_: tuple[str, ...]) -> list[str]:
    """The intent's terms an offer does not agree to, in the intent's order."""
    wanted = intent_terms if isinstance(intent_terms, (list, tuple)) else ()
    return [t for t in wanted if t not in offer_terms_]


def check_decision_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly an ``accept``/``decline`` body; ValidationError otherwise."""
    body = _exact_map(body, DECISION_KEYS, "body")
    for key in DECISION_KEYS:
        _id(body[key], key)
    return body


def offer_body(
    intent_id: bytes,
    to: bytes,
    price_minor: int,
    currency: str,
    text: str,
    handle: str,
    name: str,
    terms: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The checked ``offer`` body of these values: version 2 with ``terms``, version 1 without."""
    body: dict[str, Any] = {
        "intent": intent_id,
        "to": to,
        "price": {"money": price_minor, "cur": currency},
        "text": text,
        "vendor": {"handle": handle, "name": name},
    }
    if terms is not None:
        body |= {"v": OFFER_VERSION, "terms": list(terms)}
    return check_offer_body(body)


def check_ttl(ttl_ms: object) -> int:
    """An offer's lifetime in ms, 1 minute to 365 days."""
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or not MIN_TTL_MS <= ttl_ms <= MAX_TTL_MS:
        raise ValidationError("expires", "an offer lives between 1 minute and 365 days")
    return ttl_ms
