"""The relationship records' shapes: the frozen dataclasses, the checks of what a person types, rows
turned into records, and finding a vendor by id or handle. ``node.records`` re-exports them."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from node.errors import IdentityError, NotFoundError, ValidationError
from node.nodeid import decode_node_id, encode_node_id
from node.store import ENGAGEMENT_LEVELS, Store

T = TypeVar("T")

# Export order: every table after the tables it references.
RECORD_TABLES = (
    "vendors",
    "engagement_changes",
    "purchases",
    "notes",
    "ratings",
    "recommendations",
    "issues",
    "issue_replies",
)
VENDOR_STATUSES = ("active", "ended", "all")
REPLY_AUTHORS = ("me", "vendor")
HANDLE = re.compile(r"@[a-z0-9][a-z0-9_.-]{0,62}")
TAG = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
CURRENCY = re.compile(r"[A-Z]{3}")
MAX_NAME = 200
MAX_TEXT = 20_000
MAX_TAGS = 16
MAX_INT = 2**63 - 1  # SQLite's INTEGER; a larger Python int would fail deep in the driver


@dataclass(frozen=True)
class Vendor:
    id: int
    handle: str
    name: str
    node_id: str | None
    website: str | None
    notes: str
    engagement: str
    started_at: int
    ended_at: int | None
    end_reason: str | None
    created_at: int
    updated_at: int

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


@dataclass(frozen=True)
class Purchase:
    id: int
    vendor_id: int
    product: str
    price_minor: int | None  # in the currency's minor unit (cents); no floats for money
    currency: str | None  # ISO 4217, e.g. "USD"
    bought_at: int
    note: str


@dataclass(frozen=True)
class Note:
    id: int
    vendor_id: int
    text: str
    tags: tuple[str, ...]
    at: int


@dataclass(frozen=True)
class Rating:
    id: int
    vendor_id: int
    stars: int
    comment: str
    at: int


@dataclass(frozen=True)
class Recommendation:
    id: int
    vendor_id: int
    would_recommend: bool
    text: str
    at: int


@dataclass(frozen=True)
class EngagementChange:
    id: int
    vendor_id: int
    level: str
    at: int


@dataclass(frozen=True)
class Reply:
    id: int
    issue_id: int
    author: str  # "me" | "vendor"
    text: str
    at: int


@dataclass(frozen=True)
class Issue:
    id: int
    vendor_id: int
    title: str
    state: str  # "open" | "waiting_on_vendor" | "resolved"
    opened_at: int
    resolved_at: int | None
    replies: tuple[Reply, ...] = ()


@dataclass(frozen=True)
class TimelineEvent:
    at: int
    # started, engagement, purchase, note, rating, recommendation, issue_opened, reply, issue_resolved, ended
    kind: str
    vendor_id: int
    ref_id: int  # id of the record in its table (the vendor id for started/ended)
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


# Same-millisecond events sort in the order a relationship lives them.
_EVENT_ORDER = {
    k: i
    for i, k in enumerate(
        (
            "started",
            "engagement",
            "purchase",
            "note",
            "rating",
            "recommendation",
            "issue_opened",
            "reply",
            "issue_resolved",
            "ended",
        )
    )
}


# -- validation ------------------------------------------------------------------------------------


def _text(name: str, value: object, *, max_len: int = MAX_TEXT, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, "must be text")
    value = value.strip()
    if required and not value:
        raise ValidationError(name, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(name, f"longer than {max_len} characters")
    return value


def _time(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ValidationError(name, "must be a non-negative integer time in milliseconds since the epoch")
    return value


def normalize_handle(handle: object) -> str:
    """``"Acme-Air"`` → ``"@acme-air"``; ValidationError unless it fits ``@[a-z0-9][a-z0-9_.-]*`` (≤ 64)."""
    if not isinstance(handle, str):
        raise ValidationError("handle", "must be text")
    text = handle.strip().lower()
    text = text if text.startswith("@") else "@" + text
    if not HANDLE.fullmatch(text):
        raise ValidationError(
            "handle", f"{handle!r} is not a handle: use a-z 0-9 _ . - after '@', at most 64 characters"
        )
    return text


def handle_from_name(name: str) -> str:
    """A handle derived from a vendor name: ``"Acme Air, Inc."`` → ``"@acme-air-inc"``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:63].rstrip("-")
    if not slug:
        raise ValidationError("handle", f"no handle can be derived from {name!r}; give one")
    return "@" + slug


def _level(level: object) -> str:
    if level not in ENGAGEMENT_LEVELS:
        raise ValidationError("engagement", f"{level!r} is not one of {', '.join(ENGAGEMENT_LEVELS)}")
    return level  # type: ignore[return-value]


def canonical_node_id(value: object) -> str | None:
    """A node id in canonical (lowercase) form, None for none; ValidationError if it does not decode."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("node_id", "must be text")
    try:
        return encode_node_id(decode_node_id(value))  # canonical lowercase form
    except IdentityError as exc:
        raise ValidationError("node_id", str(exc)) from None


def _website(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = _text("website", value, max_len=2048)
    if any(c.isspace() for c in text):
        raise ValidationError("website", "must not contain spaces")
    return text


def normalize_tags(tags: Iterable[object]) -> tuple[str, ...]:
    """Lowercase tags without ``#``, duplicates dropped; ValidationError for anything else."""
    if isinstance(tags, str):
        raise ValidationError("tags", "give a list of tags, not one string")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not TAG.fullmatch(tag.strip().lstrip("#").lower()):
            raise ValidationError("tags", f"{tag!r} is not a tag: use a-z 0-9 _ - (at most 32), '#' optional")
        norm = tag.strip().lstrip("#").lower()
        if norm not in out:
            out.append(norm)
    if len(out) > MAX_TAGS:
        raise ValidationError("tags", f"at most {MAX_TAGS} tags")
    return tuple(out)


def _status(status: object) -> str:
    if status not in VENDOR_STATUSES:
        raise ValidationError("status", f"{status!r} is not one of {', '.join(VENDOR_STATUSES)}")
    return status  # type: ignore[return-value]


# -- row → record ----------------------------------------------------------------------------------


def _from_row(cls: type[T], row: dict[str, Any], **extra: Any) -> T:
    """A record from its row, taking only the dataclass's fields (later migrations may add columns)."""
    return cls(**{f: row[f] for f in cls.__dataclass_fields__ if f not in extra}, **extra)


def _vendor(row: dict[str, Any]) -> Vendor:
    return _from_row(Vendor, row)


def _note(row: dict[str, Any]) -> Note:
    return Note(
        id=row["id"],
        vendor_id=row["vendor_id"],
        text=row["text"],
        tags=tuple(json.loads(row["tags"])),
        at=row["at"],
    )


def _recommendation(row: dict[str, Any]) -> Recommendation:
    return Recommendation(
        id=row["id"],
        vendor_id=row["vendor_id"],
        would_recommend=bool(row["would_recommend"]),
        text=row["text"],
        at=row["at"],
    )


def resolve_vendor(store: Store, ref: int | str) -> dict[str, Any]:
    """The vendors row for an id or handle; NotFoundError if there is none."""
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise ValidationError("vendor", "refer to a vendor by id or handle")
    if isinstance(ref, int) or ref.strip().isdigit():
        row = (
            store.query_one("SELECT * FROM vendors WHERE id = ?", [int(ref)]) if int(ref) <= MAX_INT else None
        )
    else:
        try:
            handle = normalize_handle(ref)
        except ValidationError:
            raise NotFoundError("vendor", ref) from None
        row = store.query_one("SELECT * FROM vendors WHERE handle = ?", [handle])
    if row is None:
        raise NotFoundError("vendor", ref)
    return row
