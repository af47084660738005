"""Pure-Python twin of the native subscription matcher (``node._native.MatchIndex``).

Same input, same semantics, same output bytes: the tests compare the two on fixed cases and on random
subscriptions against random, mutated and hostile bodies and envelopes, and an index changed in place by
``add`` / ``remove`` with one built from scratch. Like the native one, the index files each subscription
under its rarest token (counted over the subscriptions present when it is added) and, inside that token,
under one thing an intent must have to match it, the first of: its first equality, its whole ``near``
prefix, its first handle, its first tag, the key and class (money in its currency, or a kind) of its
first bound (else it is checked for every intent with the token). An intent's geohash looks up its own prefixes and the prefixes extending it (a sorted
list per token). Every candidate is then checked in full, so the index only narrows and never decides.

A compiled subscription is the tuple ``(id, tokens, tags, handles, equals, near, bounds)``:

- ``tokens``, ``tags``, ``handles``: sequences of text the intent must all have (at least one token);
- ``equals``: ``(key, value)`` pairs: the intent's constraint ``key`` must be exactly ``value``
  (type-strict: ``{"int": 1}`` is not ``{"int": True}``);
- ``near``: a geohash prefix or None: the intent's ``near`` geohash and it must overlap (either is a
  prefix of the other);
- ``bounds``: ``(key, op, kind, value, currency)``: some value of the intent's constraint ``key`` (a
  scalar, or any value of its range) compares to ``value`` by ``op`` (OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE);
  ``kind`` is KIND_MONEY (same currency, minor units), KIND_INT or KIND_DATE (YYYYMMDD as a number).

A batch gives ``(flags, offsets, ids)``: ``flags[i]`` is MATCH_OK, MATCH_MALFORMED or (envelopes only)
MATCH_NOT_INTENT; item i's ids, ascending and distinct, are ``ids[offsets[i]:offsets[i + 1]]`` with
offsets unsigned 64-bit and ids signed 64-bit integers in native byte order (``memoryview(b).cast("Q")``
and ``cast("q")``).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right, insort
from collections.abc import Iterable, Sequence
from typing import Any

from node.errors import EnvelopeError
from node.reference.codec import MAX_ENVELOPE_BYTES, decode, encode
from node.reference.envelope import decode_envelope

MATCH_OK, MATCH_MALFORMED, MATCH_NOT_INTENT = 0, 1, 2
MATCH_OPS = ("=", "<", "<=", ">", ">=")  # op code = position
MATCH_KINDS = ("money", "int", "date")  # kind code = position
OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE = range(len(MATCH_OPS))
KIND_MONEY, KIND_INT, KIND_DATE = range(len(MATCH_KINDS))

_I64 = (-(2**63), 2**63 - 1)
_DIGITS = frozenset("0123456789")

Compiled = tuple[int, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple, "str | None", tuple]


def freeze(value: Any) -> Any:
    """A hashable, type-strict stand-in for a canonical value (equal iff the encodings are equal)."""
    if value is None:
        return ("n",)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("y", bytes(value))
    if isinstance(value, (list, tuple)):
        return ("a", tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return ("m", tuple(sorted(((k, freeze(v)) for k, v in value.items()), key=lambda kv: kv[0].encode())))
    raise TypeError(f"{type(value).__name__} is not a canonical value")


def date_number(value: Any) -> int | None:
    """``"YYYY-MM-DD"`` (ASCII digits) -> YYYYMMDD; anything else -> None (no calendar check)."""
    if not (isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-"):
        return None
    digits = value[:4] + value[5:7] + value[8:]
    return int(digits) if all(c in _DIGITS for c in digits) else None


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _span(c: dict) -> tuple[int, int, int, str] | None:
    """(kind, lo, hi, currency) of a constraint value, the first that applies: money (with cur), int,
    date, range (money when it has a cur, else two ints, else two dates)."""
    if "money" in c:
        v, cur = _int(c["money"]), c.get("cur")
        return None if v is None or not isinstance(cur, str) else (KIND_MONEY, v, v, cur)
    if "int" in c:
        v = _int(c["int"])
        return None if v is None else (KIND_INT, v, v, "")
    if "date" in c:
        v = date_number(c["date"])
        return None if v is None else (KIND_DATE, v, v, "")
    ends = c.get("range")
    if not isinstance(ends, list) or len(ends) != 2:
        return None
    a, b = ends
    if "cur" in c:
        cur, lo, hi = c["cur"], _int(a), _int(b)
        return None if not isinstance(cur, str) or lo is None or hi is None else (KIND_MONEY, lo, hi, cur)
    lo, hi = _int(a), _int(b)
    if lo is not None and hi is not None:
        return (KIND_INT, lo, hi, "")
    lo, hi = date_number(a), date_number(b)
    if lo is not None and hi is not None:
        return (KIND_DATE, lo, hi, "")
    return None


def _bound_holds(op: int, kind: int, x: int, cur: str, span: tuple[int, int, int, str] | None) -> bool:
    if span is None:
        return False
    s_kind, lo, hi, s_cur = span
    if s_kind != kind or (kind == KIND_MONEY and s_cur != cur):
        return False
    if op == OP_EQ:
        return lo <= x <= hi
    if op == OP_LT:
        return lo < x
    if op == OP_LE:
        return lo <= x
    if op == OP_GT:
        return hi > x
    return hi >= x


class _Body:
    """The matcher's view of a body; ``frozen`` (constraint key -> frozen value) is made on demand."""

    __slots__ = ("tokens", "tags", "handles", "constraints", "geohash", "_frozen")

    def __init__(self, tokens: list, tags: list, handles: list, constraints: dict) -> None:
        self.tokens, self.tags, self.handles, self.constraints = tokens, tags, handles, constraints
        near = constraints.get("near")
        g = near.get("geohash") if near is not None else None
        self.geohash = g if isinstance(g, str) else None
        self._frozen: dict[str, Any] | None = None

    @property
    def frozen(self) -> dict[str, Any]:
        if self._frozen is None:
            self._frozen = {k: freeze(v) for k, v in self.constraints.items()}
        return self._frozen


def _strs(value: Any) -> list | None:
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def body_view(value: Any) -> _Body | None:
    """A map with ``tokens``, ``tags``, ``handles`` (arrays of text) and ``constraints`` (a map of maps);
    other keys are ignored. Anything else is malformed: None."""
    if not isinstance(value, dict):
        return None
    tokens, tags, handles = (_strs(value.get(k)) for k in ("tokens", "tags", "handles"))
    constraints = value.get("constraints")
    if tokens is None or tags is None or handles is None or not isinstance(constraints, dict):
        return None
    if not all(isinstance(c, dict) for c in constraints.values()):
        return None
    return _Body(tokens, tags, handles, constraints)


def _file_under(sub: Compiled) -> tuple | None:
    """The discriminator a subscription is filed under (None: checked for every intent with the token)."""
    _, _, tags, handles, equals, near, bounds = sub
    if equals:
        return ("e", *equals[0])
    if near is not None:
        return ("n", near)
    if handles:
        return ("h", handles[0])
    if tags:
        return ("t", tags[0])
    if bounds:
        key, _, kind, _, cur = bounds[0]
        return ("k", key, kind, cur if kind == KIND_MONEY else "")
    return None


def _lookups(body: _Body) -> set[tuple]:
    """Every discriminator of a body but its near prefixes (looked up apart), and "plain"."""
    keys = {("e", k, v) for k, v in body.frozen.items()}
    for k, c in body.constraints.items():
        span = _span(c)  # a bound compares only with its kind (and money in its currency)
        if span is not None:
            keys.add(("k", k, span[0], span[3]))
    keys |= {("h", h) for h in body.handles} | {("t", t) for t in body.tags}
    keys.add(("p",))
    return keys


def _holds(sub: Compiled, body: _Body) -> bool:
    _, tokens, tags, handles, equals, near, bounds = sub
    if not all(t in body.tokens for t in tokens):
        return False
    if not all(t in body.tags for t in tags):
        return False
    if not all(h in body.handles for h in handles):
        return False
    if equals and not all(body.frozen.get(k) == v for k, v in equals):
        return False
    if near is not None:
        g = body.geohash
        if g is None or not (g.startswith(near) or near.startswith(g)):
            return False
    for key, op, kind, x, cur in bounds:
        c = body.constraints.get(key)
        if c is None or not _bound_holds(op, kind, x, cur, _span(c)):
            return False
    return True


# -- construction ------------------------------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    value.encode("utf-8")  # a lone surrogate: UnicodeEncodeError, as when the native core reads it
    return value


def _texts(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{what} must be a sequence of str")
    return tuple(_text(v, what) for v in value)


def _i64(value: Any, what: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not _I64[0] <= value <= _I64[1]:
        raise OverflowError(f"{what} does not fit in 64 bits")
    return int(value)


def _tuple(value: Any, n: int, what: str) -> tuple:
    """``value`` as an n-tuple: TypeError for another type, ValueError for another length (as natively)."""
    if not isinstance(value, tuple):
        raise TypeError(f"{what} must be a tuple, not {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"{what}: expected a tuple of length {n}, got {len(value)}")
    return value


def _compile(item: Any) -> Compiled:
    item = _tuple(item, 7, "a compiled subscription (id, tokens, tags, handles, equals, near, bounds)")
    sid, tokens, tags, handles, equals, near, bounds = item
    sid = _i64(sid, "id")
    tokens, tags, handles = _texts(tokens, "tokens"), _texts(tags, "tags"), _texts(handles, "handles")
    eq = []
    for pair in equals:
        pair = _tuple(pair, 2, "an equality (key, value)")
        key = _text(pair[0], "key")
        encode(pair[1])  # EnvelopeError for what cannot travel, as natively
        eq.append((key, freeze(pair[1])))
    if near is not None:
        near = _text(near, "near")
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Sequence):
        raise TypeError("bounds must be a sequence")
    bs = []
    for b in bounds:
        b = _tuple(b, 5, "a bound (key, op, kind, value, currency)")
        key, op, kind, value, cur = _text(b[0], "key"), _i64(b[1], "op"), _i64(b[2], "kind"), b[3], b[4]
        value, cur = _i64(value, "value"), _text(cur, "currency")
        if not OP_EQ <= op <= OP_GE:
            raise ValueError(f"subscription {sid}: unknown op code {op}")
        if not KIND_MONEY <= kind <= KIND_DATE:
            raise ValueError(f"subscription {sid}: unknown kind code {kind}")
        bs.append((key, op, kind, value, cur))
    return (sid, tokens, tags, handles, tuple(eq), near, tuple(bs))


def _id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("ids must be ints")
    return _i64(value, "id")


class MatchIndex:
    """A vendor's compiled subscriptions (see the module docstring for the input and output forms),
    changed in place by ``add`` and ``remove``."""

    def __init__(self, subscriptions: Iterable[tuple]) -> None:
        self._counts: dict[str, int] = {}  # token -> subscriptions having it
        self._keyed: dict[tuple, dict[int, Compiled]] = {}  # (token, discriminator) -> serial -> sub
        self._near: dict[str, dict[str, dict[int, Compiled]]] = {}  # token -> prefix -> serial -> sub
        self._prefixes: dict[str, list[str]] = {}  # token -> its near prefixes, sorted
        self._longest = 0  # the longest near prefix filed so far
        self._by_id: dict[int, list[tuple[int, tuple]]] = {}  # id -> (serial, where filed)
        self._serial = 0
        self._len = 0
        self.add(subscriptions)

    def __len__(self) -> int:
        return self._len

    def add(self, subscriptions: Iterable[tuple]) -> None:
        """Add subscriptions (ids may repeat); all or nothing: an error leaves the index as it was."""
        subs = [_compile(item) for item in subscriptions]
        for sub in subs:
            if not sub[1]:
                raise ValueError(f"subscription {sub[0]} has no token")
        # Count the whole batch first, so that it files under its rarest tokens as a build does.
        for sub in subs:
            for t in sub[1]:
                self._counts[t] = self._counts.get(t, 0) + 1
        for sub in subs:
            token = min(sub[1], key=self._counts.__getitem__)
            disc = _file_under(sub) or ("p",)
            if disc[0] == "n":
                prefixes = self._near.setdefault(token, {})
                if disc[1] not in prefixes:
                    insort(self._prefixes.setdefault(token, []), disc[1])
                    self._longest = max(self._longest, len(disc[1]))
                where: tuple = (token, *disc)
                posting = prefixes.setdefault(disc[1], {})
            else:
                where = (token, *disc)
                posting = self._keyed.setdefault(where, {})
            self._serial += 1
            posting[self._serial] = sub
            self._by_id.setdefault(sub[0], []).append((self._serial, where))
            self._len += 1

    def remove(self, ids: Iterable[int]) -> int:
        """Remove every subscription with one of these ids; the number removed."""
        removed = 0
        for sid in [_id(i) for i in ids]:
            for serial, where in self._by_id.pop(sid, ()):
                if where[1] == "n":  # (token, "n", near prefix)
                    token, _, prefix = where
                    prefixes = self._near[token]
                    sub = prefixes[prefix].pop(serial)
                    if not prefixes[prefix]:
                        del prefixes[prefix]
                        self._prefixes[token].remove(prefix)
                        if not prefixes:
                            del self._near[token], self._prefixes[token]
                else:
                    sub = self._keyed[where].pop(serial)
                    if not self._keyed[where]:
                        del self._keyed[where]
                for t in sub[1]:
                    self._counts[t] -= 1
                    if not self._counts[t]:
                        del self._counts[t]
                removed += 1
                self._len -= 1
        return removed

    def heap_bytes(self) -> int:
        """A rough size of the index's own containers and subscription tuples, in bytes."""
        size = sum(map(sys.getsizeof, (self._counts, self._keyed, self._near, self._prefixes, self._by_id)))
        size += sum(sys.getsizeof(d) for d in self._keyed.values())
        size += sum(sys.getsizeof(d) for p in self._near.values() for d in p.values())
        size += sum(sys.getsizeof(e) for e in self._by_id.values())
        return size + self._len * 200  # a compiled tuple and its small parts, roughly

    def match_value(self, value: Any) -> list[int] | None:
        """The ids a decoded body matches (ascending, distinct), or None when it is malformed."""
        body = body_view(value)
        if body is None:
            return None
        found: set[int] = set()
        keys = None
        g = body.geohash
        for t in dict.fromkeys(body.tokens):
            if not self._counts.get(t):
                continue
            if keys is None:
                keys = _lookups(body)
            candidates: list = []
            for key in keys:
                candidates += self._keyed.get((t, *key), {}).values()
            near = self._near.get(t)
            if near and g is not None:
                # Prefixes the geohash extends (the empty one too), then those that extend it.
                for end in range(min(len(g), self._longest) + 1):
                    candidates += near.get(g[:end], {}).values()
                prefixes = self._prefixes[t]
                i = bisect_right(prefixes, g)
                while i < len(prefixes) and prefixes[i].startswith(g):
                    candidates += near[prefixes[i]].values()
                    i += 1
            found.update(sub[0] for sub in candidates if _holds(sub, body))
        return sorted(found)

    def _match_body(self, data: bytes) -> tuple[int, list[int]]:
        try:
            value = decode(data)
        except EnvelopeError:
            return MATCH_MALFORMED, []
        ids = self.match_value(value)
        return (MATCH_MALFORMED, []) if ids is None else (MATCH_OK, ids)

    def _match_envelope(self, data: bytes) -> tuple[int, list[int]]:
        try:
            kind, body = decode_envelope(data)[1::4]
        except EnvelopeError:
            return MATCH_MALFORMED, []
        if kind != "intent":
            return MATCH_NOT_INTENT, []
        ids = self.match_value(body)
        return (MATCH_MALFORMED, []) if ids is None else (MATCH_OK, ids)

    def _batch(self, items: Iterable[Any], what: str, one) -> tuple[bytes, bytes, bytes]:
        datas = []
        for item in items:
            if not isinstance(item, (bytes, bytearray, memoryview)):
                raise TypeError(f"{what} must be bytes, bytearray or memoryview")
            datas.append(bytes(item))
        flags = bytearray()
        offsets = array("Q", [0])
        ids = array("q")
        for data in datas:
            flag, found = (MATCH_MALFORMED, []) if len(data) > MAX_ENVELOPE_BYTES else one(data)
            flags.append(flag)
            ids.extend(found)
            offsets.append(len(ids))
        return bytes(flags), offsets.tobytes(), ids.tobytes()

    def match_bodies(self, bodies: Iterable[Any]) -> tuple[bytes, bytes, bytes]:
        """One batch of canonical intent bodies: (flags, offsets, ids)."""
        return self._batch(bodies, "bodies", self._match_body)

    def match_envelopes(self, envelopes: Iterable[Any]) -> tuple[bytes, bytes, bytes]:
        """One batch of envelopes (structure checked, signatures not): (flags, offsets, ids)."""
        return self._batch(envelopes, "envelopes", self._match_envelope)
