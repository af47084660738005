"""Subscriptions: the intents a vendor wants to hear about, compiled into one matcher index.

A subscription is written like an intent (PROTOCOL.md section 5, the same tokenizer) plus comparisons
``key>=V``, ``key<=V``, ``key>V``, ``key<V`` for the typed keys (money, dates, whole numbers). An intent
matches when it has every ``?token``, ``#tag`` and ``@handle`` of the subscription, and for each
constraint:

- ``key:V`` on a money, date or number key: the intent's value is V, or its range contains V; a range
  ``key:A..B``: the intent's value or range overlaps it;
- ``near:PREFIX``: the intent's ``near`` geohash and PREFIX overlap (either is a prefix of the other);
- any other ``key:V`` (places, text): the intent has exactly that value;
- ``key OP V``: some value of the intent's (a scalar, or any of its range) compares so with V; money
  only in the same currency (``max>=200USD`` matches ``max:400USD`` and ``max:100..300USD``).

Subscriptions are local (never on the wire). ``Subscriptions`` keeps them in the ``subscriptions``
table (``spec`` = the parsed form, JSON, found again by its indexed ``spec_hash``); ``index()`` compiles
all of them into a SubscriptionIndex, one native MatchIndex matching whole batches of intent envelopes in
one call. A vendor node keeps one ``LiveIndex``: built from the store once, then changed in place by each
subscribe and unsubscribe (the table's triggers journal the changes), so a subscribe never rebuilds it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.backends import NATIVE, Backend
from node.errors import ConflictError, IntentSyntaxError, NotFoundError, ValidationError
from node.store import Clock, Store, spec_hash, wall_clock_ms

COMPARISON_OPS = (">=", "<=", ">", "<")
# A comparison word: the key (as in key:value), then the op, then the value.
_COMPARISON = re.compile(r"([a-z][a-z0-9_]*)(>=|<=|>|<)(.*)", re.DOTALL)
_EXAMPLES = {"money": "200USD", "date": "2026-12-20", "int": "3"}


@dataclass(frozen=True)
class Comparison:
    """``key op value``: value typed as the tokenizer types ``key:value`` (``{"money": 20000, "cur":
    "USD"}``, ``{"date": "2026-12-20"}`` or ``{"int": 3}``)."""

    key: str
    op: str  # one of COMPARISON_OPS
    value: dict[str, Any]


@dataclass(frozen=True)
class ParsedSubscription:
    """What a subscription's text says: names without sigils, constraints as the tokenizer types them."""

    text: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    handles: tuple[str, ...]
    constraints: dict[str, dict[str, Any]]
    comparisons: tuple[Comparison, ...]

    def spec(self) -> dict[str, Any]:
        """The stored form (JSON-able; the text is kept beside it), in a canonical order: names sorted,
        comparisons sorted and distinct, so two subscriptions mean the same iff their specs are equal."""
        comparisons = {json.dumps([c.key, c.op, c.value], sort_keys=True): c for c in self.comparisons}
        return {
            "tokens": sorted(self.tokens),
            "tags": sorted(self.tags),
            "handles": sorted(self.handles),
            "constraints": {k: dict(v) for k, v in sorted(self.constraints.items())},
            "comparisons": [[c.key, c.op, dict(c.value)] for _, c in sorted(comparisons.items())],
        }

    @classmethod
    def from_spec(cls, text: str, spec: Mapping[str, Any]) -> ParsedSubscription:
        return cls(
            text=text,
            tokens=tuple(spec["tokens"]),
            tags=tuple(spec["tags"]),
            handles=tuple(spec["handles"]),
            constraints={k: dict(v) for k, v in spec["constraints"].items()},
            comparisons=tuple(Comparison(k, op, dict(v)) for k, op, v in spec["comparisons"]),
        )


@dataclass(frozen=True)
class Subscription:
    """A stored subscription; ``id`` is what the index returns for it."""

    id: int
    text: str
    parsed: ParsedSubscription
    created_at: int  # ms

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "created_at": self.created_at, **self.parsed.spec()}


# -- parsing ----------------------------------------------------------------------------------------


def _words(text: str) -> list[tuple[str, int]]:
    """(word, character offset) of each word, split and stripped exactly as the intent tokenizer does."""
    from node.reference.intent import LEADING_PUNCTUATION, TRAILING_PUNCTUATION, WHITE_SPACE

    out = []
    start = None
    for i, c in enumerate(text + " "):
        if c in WHITE_SPACE:
            if start is not None:
                lead, end = start, i
                while lead < end and text[lead] in LEADING_PUNCTUATION:
                    lead += 1
                while end > lead and text[end - 1] in TRAILING_PUNCTUATION:
                    end -= 1
                if end > lead:
                    out.append((text[lead:end], lead))
                start = None
        elif start is None:
            start = i
    return out


def _comparison(key: str, op: str, value: str, word: str, offset: int, backend: Backend) -> Comparison:
    from node.reference.intent import DATE_KEYS, INT_KEYS, MONEY_KEYS

    if key not in MONEY_KEYS + DATE_KEYS + INT_KEYS:
        raise IntentSyntaxError(
            f"{key}: only amounts ({', '.join(MONEY_KEYS)}), dates ({', '.join(DATE_KEYS)}) and whole numbers"
            f" ({', '.join(INT_KEYS)}) can be compared",
            word,
            offset,
        )
    kind = "money" if key in MONEY_KEYS else "date" if key in DATE_KEYS else "int"
    if not value:
        example = f"{key}{op}{_EXAMPLES[kind]}"
        raise IntentSyntaxError(f"{key}: give a value to compare with, such as {example}", word, offset)
    # The value is typed exactly as in `key:value`, by the tokenizer itself.
    try:
        typed = backend.parse_intent(f"?x {key}:{value}")["constraints"].get(key)
    except IntentSyntaxError as exc:
        raise IntentSyntaxError(exc.message, word, offset) from None
    if typed is None or "range" in typed:
        raise IntentSyntaxError(f"{key}: a comparison takes one value, not a range", word, offset)
    return Comparison(key, op, dict(typed))


def parse_subscription(text: str, *, backend: Backend = NATIVE) -> ParsedSubscription:
    """Parse a subscription's text; IntentSyntaxError names the offending word and its character offset."""
    if not isinstance(text, str):
        raise IntentSyntaxError("the subscription must be text")
    # Comparisons are free words to the intent tokenizer, so it checks everything else, in its order.
    parsed = backend.parse_intent(text)
    free = list(parsed["words"])
    comparisons = []
    for word, offset in _words(text):
        # A free word is the next one of the tokenizer's words (classification depends on the word alone).
        if not free or word != free[0]:
            continue
        free.pop(0)
        match = _COMPARISON.fullmatch(word)
        if match is None:
            raise IntentSyntaxError(
                f"'{word}' is not a ?token, #tag, @handle, key:value or comparison such as max>=200USD",
                word,
                offset,
            )
        comparisons.append(_comparison(*match.groups(), word, offset, backend))
    return ParsedSubscription(
        text=text,
        tokens=tuple(parsed["tokens"]),
        tags=tuple(parsed["tags"]),
        handles=tuple(parsed["handles"]),
        constraints={k: dict(v) for k, v in parsed["constraints"].items()},
        comparisons=tuple(comparisons),
    )


# -- compiling ----------------------------------------------------------------------------------------


def _typed(value: Mapping[str, Any]) -> tuple[str, int, int, str] | None:
    """(kind, lo, hi, currency) of a money, date or number constraint (scalar or range); else None."""
    if "money" in value:
        return "money", value["money"], value["money"], value["cur"]
    if "int" in value:
        return "int", value["int"], value["int"], ""
    if "date" in value:
        n = _date_number(value["date"])
        return "date", n, n, ""
    if "range" in value:
        lo, hi = value["range"]
        if "cur" in value:
            return "money", lo, hi, value["cur"]
        if isinstance(lo, int):
            return "int", lo, hi, ""
        return "date", _date_number(lo), _date_number(hi), ""
    return None


def _date_number(date: str) -> int:
    return int(date.replace("-", ""))


def compile_subscription(sub_id: int, parsed: ParsedSubscription, *, backend: Backend = NATIVE) -> tuple:
    """The matcher's tuple ``(id, tokens, tags, handles, equals, near, bounds)`` (node/_native.pyi)."""
    ops, kinds = backend.MATCH_OPS, backend.MATCH_KINDS
    equals: list[tuple[str, dict[str, Any]]] = []
    near = None
    bounds: list[tuple[str, int, int, int, str]] = []

    def bound(key: str, op: str, kind: str, value: int, cur: str) -> None:
        bounds.append((key, ops.index(op), kinds.index(kind), value, cur))

    for key, value in parsed.constraints.items():
        typed = _typed(value)
        if key == "near" and "geohash" in value:
            near = value["geohash"]
        elif typed is None:
            equals.append((key, dict(value)))
        elif "range" in value:  # overlaps the intent's value or range
            bound(key, ">=", typed[0], typed[1], typed[3])
            bound(key, "<=", typed[0], typed[2], typed[3])
        else:  # the intent's value, or a value of its range
            bound(key, "=", typed[0], typed[1], typed[3])
    for c in parsed.comparisons:
        typed = _typed(c.value)
        if typed is None:
            raise ValidationError("spec", f"comparison on {c.key!r} has no amount, date or number")
        bound(c.key, c.op, typed[0], typed[1], typed[3])
    return (sub_id, list(parsed.tokens), list(parsed.tags), list(parsed.handles), equals, near, bounds)


class SubscriptionIndex:
    """Compiled subscriptions; ``match_*`` take a whole batch in one native call and give, per item, the
    ids of the subscriptions it matches (ascending; [] for malformed items and non-intents)."""

    def __init__(self, compiled: Iterable[tuple], *, backend: Backend = NATIVE) -> None:
        self._index = backend.MatchIndex(compiled)

    @classmethod
    def from_parsed(
        cls, subscriptions: Iterable[tuple[int, ParsedSubscription]], *, backend: Backend = NATIVE
    ) -> SubscriptionIndex:
        return cls((compile_subscription(i, p, backend=backend) for i, p in subscriptions), backend=backend)

    def __len__(self) -> int:
        return len(self._index)

    @property
    def native(self) -> Any:
        """The backend's MatchIndex itself, for the one-pass ``Verifier.ingest`` (federation.verify)."""
        return self._index

    def add(self, compiled: Iterable[tuple]) -> None:
        """Add compiled subscriptions in place (all or nothing)."""
        self._index.add(compiled)

    def remove(self, ids: Iterable[int]) -> int:
        """Remove every subscription with one of these ids; how many were removed."""
        return self._index.remove(ids)

    def heap_bytes(self) -> int:
        """The index's own estimate of the memory it holds, in bytes."""
        return self._index.heap_bytes()

    def match_envelopes(self, raws: Sequence[bytes]) -> list[list[int]]:
        """Envelopes (verified by the caller): ids per envelope; only ``intent`` envelopes match."""
        return _split(*self._index.match_envelopes(raws))

    def match_bodies(self, bodies: Sequence[bytes]) -> list[list[int]]:
        """Canonical intent bodies: ids per body."""
        return _split(*self._index.match_bodies(bodies))


def _split(flags: bytes, offsets: bytes, ids: bytes) -> list[list[int]]:
    off = memoryview(offsets).cast("Q")
    found = memoryview(ids).cast("q")
    return [found[off[i] : off[i + 1]].tolist() for i in range(len(flags))]


# -- the store ----------------------------------------------------------------------------------------


def _row_subscription(row: Mapping[str, Any]) -> Subscription:
    parsed = ParsedSubscription.from_spec(row["text"], json.loads(row["spec"]))
    return Subscription(id=row["id"], text=row["text"], parsed=parsed, created_at=row["created_at"])


def spec_json(parsed: ParsedSubscription) -> str:
    """The stored form of a spec: canonical JSON (equal meanings, equal strings)."""
    return json.dumps(parsed.spec(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class Subscriptions:
    """A vendor's subscriptions over one Store. Writes run in their own transaction (a savepoint when the
    caller holds one)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = wall_clock_ms,
        backend: Backend = NATIVE,
        live: LiveIndex | None = None,
    ) -> None:
        """``live``: the node's live index, brought up to date after each change has committed."""
        self._store = store
        self._clock = clock
        self._backend = backend
        self._live = live

    def add(self, text: str) -> Subscription:
        """Parse and store ``text``; IntentSyntaxError pointing at the offending word, ConflictError when
        an identical subscription (same meaning) is already stored."""
        parsed = parse_subscription(text, backend=self._backend)
        spec = spec_json(parsed)
        key = spec_hash(spec)
        with self._store.transaction():
            same = self._store.query_one(
                "SELECT id FROM subscriptions WHERE spec_hash = ? AND spec = ?", [key, spec]
            )
            if same is not None:
                raise ConflictError(f"subscription {same['id']} already listens for exactly this")
            try:
                sub_id = self._store.insert(
                    "subscriptions", {"text": text, "spec": spec, "spec_hash": key, "created_at": self._clock()}
                )
            except sqlite3.IntegrityError as exc:
                raise ValidationError("text", f"cannot store this subscription: {exc}") from None
        self._changed()
        return self.get(sub_id)

    def _changed(self) -> None:
        # After the commit, outside the write transaction; inside a caller's, the change may yet roll
        # back: the live index then catches up at its next sync.
        if self._live is not None:
            if self._store.in_transaction:
                self._live.invalidate()
            else:
                self._live.sync()

    def list(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        rows = self._store.query("SELECT * FROM subscriptions ORDER BY id")
        return [_row_subscription(r) for r in rows]

    def get(self, sub_id: int) -> Subscription:
        row = self._store.query_one("SELECT * FROM subscriptions WHERE id = ?", [_check_id(sub_id)])
        if row is None:
            raise NotFoundError("subscription", sub_id)
        return _row_subscription(row)

    def remove(self, sub_id: int) -> Subscription:
        """Delete one subscription and return it (leads it brought stay)."""
        sub = self.get(sub_id)
        with self._store.transaction():
            self._store.execute("DELETE FROM subscriptions WHERE id = ?", [sub.id])
        self._changed()
        return sub

    def index(self) -> SubscriptionIndex:
        """Every stored subscription compiled into one index."""
        rows = self._store.query("SELECT id, spec FROM subscriptions ORDER BY id")
        return SubscriptionIndex(_compiled(rows, self._backend), backend=self._backend)


def _compiled(rows: Iterable[Mapping[str, Any]], backend: Backend) -> Iterator[tuple]:
    for r in rows:
        yield compile_subscription(r["id"], ParsedSubscription.from_spec("", json.loads(r["spec"])), backend=backend)


class LiveIndex:
    """The vendor's one matcher index, kept current in place.

    Built from the store on first use; then ``sync`` applies what the ``subscription_changes`` journal
    (written by the table's triggers) lists since the last sync: the ids changed are removed from the
    native index and those still stored added again, so a subscribe costs what it changes, never a
    rebuild. ``sync`` reads the store: call it where the store may be used (its thread), after the
    change has committed. Matching may run on other threads meanwhile (the native index takes its
    read lock per item, an update its write lock). ``invalidate`` (from any thread) asks the next
    ``__call__`` to sync first."""

    BUILD_CHUNK = 20_000  # subscriptions compiled and added per native call while building

    def __init__(self, store: Store, *, backend: Backend = NATIVE) -> None:
        self._store = store
        self._backend = backend
        self._index: SubscriptionIndex | None = None
        self._seq = 0  # the last journal entry applied
        self._stale = True
        self._lock = threading.Lock()  # one sync at a time

    def __call__(self) -> SubscriptionIndex:
        """The index, synced first when a change was announced (what the pipeline calls)."""
        if self._stale or self._index is None:
            self.sync()
        assert self._index is not None
        return self._index

    def current(self) -> SubscriptionIndex | None:
        """The index if no change is pending (no store read: callable from any thread), else None."""
        index = self._index
        return None if self._stale or index is None else index

    def invalidate(self) -> None:
        self._stale = True

    def sync(self) -> int:
        """Apply the journaled changes (the first call builds the index); the number of subscription
        ids looked at again."""
        with self._lock:
            self._stale = False
            if self._index is None:
                return self._build()
            rows = self._store.query(
                "SELECT seq, subscription_id FROM subscription_changes WHERE seq > ? ORDER BY seq", [self._seq]
            )
            if not rows:
                return 0
            if rows[0]["seq"] != self._seq + 1:  # pruned past us (far behind): start again
                return self._build()
            self._seq = rows[-1]["seq"]
            ids = sorted({r["subscription_id"] for r in rows})
            return self._apply(ids)

    def _build(self) -> int:
        # The journal position first: a change committed meanwhile is applied again at the next sync,
        # and applying one twice gives the same index.
        self._seq = self._store.query("SELECT coalesce(max(seq), 0) AS seq FROM subscription_changes")[0]["seq"]
        index = SubscriptionIndex([], backend=self._backend)
        last, total = None, 0
        while True:
            rows = self._store.query(
                "SELECT id, spec FROM subscriptions WHERE ? IS NULL OR id > ? ORDER BY id LIMIT ?",
                [last, last, self.BUILD_CHUNK],
            )
            if not rows:
                break
            index.add(_compiled(rows, self._backend))
            last, total = rows[-1]["id"], total + len(rows)
        self._index = index
        return total

    def _apply(self, ids: list[int]) -> int:
        assert self._index is not None
        stored = []
        for at in range(0, len(ids), 500):
            chunk = ids[at : at + 500]
            marks = ", ".join("?" for _ in chunk)
            stored += self._store.query(f"SELECT id, spec FROM subscriptions WHERE id IN ({marks})", chunk)
        compiled = list(_compiled(stored, self._backend))
        self._index.remove(ids)
        self._index.add(compiled)
        return len(ids)


def _check_id(sub_id: object) -> int:
    if isinstance(sub_id, bool) or not isinstance(sub_id, int):
        raise ValidationError("id", "a subscription is referred to by its number")
    return sub_id
