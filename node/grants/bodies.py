"""Consented access: the exact checks of request, grant, revoke and deletion bodies."""

from __future__ import annotations

import re
from typing import Any

from node.errors import ValidationError
from node.grants.model import (
    DELETION_KEYS,
    END_REASONS,
    GRANT_KEYS,
    MAX_DURATION_MS,
    MAX_FIELDS,
    MAX_PURPOSE,
    MAX_USES,
    MIN_DURATION_MS,
    REQUEST_KEYS,
    REVOKE_KEYS,
    _HEX64,
)
from node.intents import normalize_terms
from node.vault import FIELD_NAME


# -- bodies ------------------------------------------------------------------------------------------


def _exact_map(value: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict) or sorted(value) != list(keys):
        raise ValidationError("body", f"must be a map with exactly the keys {', '.join(keys)}")
    return value


def _key(value: object, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValidationError(name, "must be 32 bytes")
    return value


def _optional_key(value: object, name: str) -> bytes | None:
    return None if value is None else _key(value, name)


def check_fields(value: object, name: str = "fields", *, minimum: int = 1) -> list[str]:
    """``value`` if it is a list of ``minimum``..32 vault field names, distinct and sorted ascending."""
    if not isinstance(value, list) or not minimum <= len(value) <= MAX_FIELDS:
        raise ValidationError(name, f"must be a list of {minimum} to {MAX_FIELDS} field names")
    for item in value:
        if not isinstance(item, str) or not FIELD_NAME.fullmatch(item):
            raise ValidationError(name, f"{item!r} is not a field name (1-64 of a-z 0-9 _ . -)")
    if any(a >= b for a, b in zip(value, value[1:])):
        raise ValidationError(name, "must be distinct and sorted ascending")
    return value


def check_purpose(value: object, name: str = "purpose", *, empty: bool = False) -> str:
    """Text of 1..500 characters, not only white space, without control characters (or "" if
    ``empty``)."""
    if empty and value == "":
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, "must be non-empty text")
    if len(value) > MAX_PURPOSE:
        raise ValidationError(name, f"longer than {MAX_PURPOSE} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValidationError(name, "must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(name, "is not valid Unicode text") from None
    return value


def _uint(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(name, f"must be a whole number from {low} to {high}")
    return value


def check_request_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``request`` body; ValidationError naming the field otherwise."""
    body = _exact_map(body, REQUEST_KEYS)
    _key(body["to"], "to")
    check_fields(body["fields"])
    check_purpose(body["purpose"])
    _uint(body["duration"], "duration", MIN_DURATION_MS, MAX_DURATION_MS)
    _optional_key(body["for"], "for")
    return body


def check_grant_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``grant`` body."""
    body = _exact_map(body, GRANT_KEYS)
    _key(body["to"], "to")
    check_fields(body["fields"])
    check_purpose(body["purpose"])
    if body["uses"] is not None:
        _uint(body["uses"], "uses", 1, MAX_USES)
    terms = body["terms"]
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ValidationError("terms", "must be a list of term names")
    if normalize_terms(terms) != tuple(terms):
        raise ValidationError("terms", "must be known term names, lower case, each once")
    _optional_key(body["for"], "for")
    _optional_key(body["request"], "request")
    if not isinstance(body["push"], bool):
        raise ValidationError("push", "must be true or false")
    return body


def check_revoke_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``revoke`` body."""
    body = _exact_map(body, REVOKE_KEYS)
    _key(body["to"], "to")
    _key(body["grant"], "grant")
    if body["reason"] not in END_REASONS or not isinstance(body["reason"], str):
        raise ValidationError("reason", f"must be one of {', '.join(END_REASONS)}")
    return body


def check_deletion_body(body: object) -> dict[str, Any]:
    """``body`` if it is exactly a ``deletion`` body (``fields`` may be empty: nothing was held)."""
    body = _exact_map(body, DELETION_KEYS)
    _key(body["to"], "to")
    _key(body["grant"], "grant")
    _optional_key(body["revoke"], "revoke")
    check_fields(body["fields"], minimum=0)
    return body


def field_list(fields: object, name: str = "fields") -> list[str]:
    """Field names as given by a person or a vendor (any order, repeats allowed), as a body wants
    them: checked, distinct, sorted."""
    if isinstance(fields, str):
        fields = [f for f in re.split(r"[,\s]+", fields) if f]
    if not isinstance(fields, (list, tuple)):
        raise ValidationError(name, "give a list of field names")
    names = sorted({f.strip().lower() if isinstance(f, str) else f for f in fields}, key=str)
    return check_fields(names, name)


def _hex_key(value: object, name: str) -> str:
    """A 32-byte key given as bytes or 64 hex characters, as lower-case hex."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 32:
        return bytes(value).hex()
    if isinstance(value, str) and _HEX64.fullmatch(value.strip().lower()):
        return value.strip().lower()
    raise ValidationError(name, "must be a 32-byte key (or its 64 hex characters)")
