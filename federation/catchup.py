"""Catch-up by set reconciliation (PROTOCOL.md section 13): the bodies of ``POST /v1/reconcile`` and
``POST /v1/gossip/ids``, and the two store reads behind them (the set, the envelopes by id).

The set a node reconciles is the ``(created, id)`` of the live gossiped envelopes it would serve on a
pull page: not expired, not direct (those go to their addressee's inbox), not an intent a held
withdrawal ended. It is read newest first and capped at ``MAX_SET`` items, so one request costs a
bounded query however large the log grows; older items beyond the cap are left to cursor pulls.

A **token filter** (``"?bike ?flight"``: ``?tokens`` sorted by code point, distinct, one space apart,
at most ``MAX_FILTER_TOKENS``) narrows the set to the live intents carrying at least one of them. A
vendor reconciles with its subscriptions' filter (``own_filter``: the first token of each, since an
intent matching a subscription carries all its tokens), so a vendor back from offline fetches only
the intents it could match. A node serving filters advertises ``TOKENS_CAPABILITY`` too.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from federation import wire
from federation.kinds import DIRECT_KINDS
from federation.admission import GLOBAL
from federation.ratelimit import RateLimiter
from node import reconcile
from node.backends import NATIVE, Backend
from node.errors import WireError
from node.gossiplog import id_in
from node.store import Clock, Store, wall_clock_ms

CAPABILITY = "reconcile/1"  # advertised in GET /v1/node's "gossip" list
MAX_SET = 200_000  # items in the set one reconciliation covers (newest first)
MAX_FETCH = wire.MAX_ITEMS  # ids in one POST /v1/gossip/ids
ALL = ""  # every gossiped envelope
TOKENS_CAPABILITY = "reconcile-tokens/1"  # token filters are served (GET /v1/node's "gossip")
CAPABILITIES = (CAPABILITY, TOKENS_CAPABILITY)
MAX_FILTER_TOKENS = 64
MAX_TOKEN = 100  # characters of one token in a filter
MAX_FILTER = MAX_FILTER_TOKENS * (MAX_TOKEN + 2)  # characters of the longest canonical filter, and then some
MAX_FILTER_BYTES = 4 * MAX_FILTER  # its UTF-8 (msgpack bounds a string in bytes)
MAX_CACHED = MAX_SET  # intents whose tokens are remembered (an envelope's tokens never change), ~30 MB
MAX_SETS = 8  # filters whose built sets are remembered
MAX_CHANGES = 4_096  # envelopes added, withdrawn or expired since a set was built that update it in place
# Sets built for a filter not kept (the peer chooses it; a build reads or filters every live intent,
# 0.1-0.5 s of the store's thread at MAX_SET): a signer may have one every BUILD_EVERY_S (BUILD_BURST at
# once), the node BUILDS_PER_S (NODE_BUILD_BURST at once). A request over either is answered busy.
BUILD_EVERY_S = 10.0
BUILD_BURST = 2
BUILDS_PER_S = 1.0
NODE_BUILD_BURST = 8
REBUILD_MS = 60_000  # a set at MAX_SET that lost items is read whole again after this (older ones refill it)

_NONE: frozenset[str] = frozenset()
_LIVE = f"""expires_at > ? AND recipient IS NULL AND kind NOT IN ({", ".join("?" * len(DIRECT_KINDS))})
    AND NOT (kind = 'intent' AND EXISTS (SELECT 1 FROM envelopes w WHERE w.kind = 'withdraw'
                                         AND w.ref = envelopes.id))"""


def encode_request(filter_text: str, msg: bytes) -> bytes:
    return msgpack.packb({"filter": filter_text, "msg": msg}, use_bin_type=True)


def decode_request(body: bytes) -> tuple[str, bytes]:
    """``{"filter": text, "msg": bin}`` → (filter, msg); WireError when malformed or too large."""
    if len(body) > reconcile.MAX_MESSAGE_BYTES + MAX_FILTER_BYTES + 64:
        raise WireError("too_large", f"a reconcile request is at most {reconcile.MAX_MESSAGE_BYTES} bytes of msg")
    value = _unpack(body, "the reconcile request")
    filter_text, msg = value.get("filter"), value.get("msg")
    if not isinstance(filter_text, str) or len(filter_text) > MAX_FILTER:
        raise WireError("malformed", f"filter must be text of at most {MAX_FILTER} characters")
    if not isinstance(msg, bytes):
        raise WireError("malformed", "msg must be bin")
    parse_filter(filter_text)
    return filter_text, msg


def parse_filter(filter_text: str) -> frozenset[str] | None:
    """The tokens of a filter (None for ``""``: all gossip); WireError unless it is canonical."""
    if filter_text == ALL:
        return None
    words = filter_text.split(" ")
    tokens = [w[1:] for w in words]
    if (
        len(words) > MAX_FILTER_TOKENS
        or not all(w.startswith("?") and 0 < len(w) - 1 <= MAX_TOKEN for w in words)
        or any(c.isspace() or unicodedata.category(c) == "Cc" or c == "?" for t in tokens for c in t)  # DEL, C1 too
        or tokens != sorted(set(tokens))
    ):
        raise WireError(
            "malformed",
            f'a filter is "" or up to {MAX_FILTER_TOKENS} ?tokens, sorted, distinct, one space apart',
        )
    return frozenset(tokens)


def token_filter(tokens: Sequence[str]) -> str:
    """The canonical filter of ``tokens`` (``""`` for none, or too many to be worth a filter)."""
    distinct = sorted(set(tokens))
    if not distinct or len(distinct) > MAX_FILTER_TOKENS or any(len(t) > MAX_TOKEN for t in distinct):
        return ALL
    return " ".join("?" + t for t in distinct)


def encode_answer(msg: bytes) -> bytes:
    return msgpack.packb({"msg": msg}, use_bin_type=True)


def decode_answer(body: bytes) -> bytes:
    if len(body) > reconcile.MAX_ANSWER_BYTES + 64:
        raise WireError("too_large", "the reconcile answer is too large")
    msg = _unpack(body, "the reconcile answer").get("msg")
    if not isinstance(msg, bytes):
        raise WireError("malformed", "the reconcile answer's msg must be bin")
    return msg


def encode_ids(ids: Sequence[bytes]) -> bytes:
    return msgpack.packb({"ids": list(ids)}, use_bin_type=True)


def decode_ids(body: bytes) -> list[bytes]:
    """``{"ids": [bin 32, …]}`` (at most MAX_FETCH) → the distinct ids, sorted; ids that are not 32 bytes
    are ignored."""
    if len(body) > MAX_FETCH * 35 + 64:
        raise WireError("too_large", f"at most {MAX_FETCH} ids per request")
    ids = _unpack(body, "the ids request").get("ids")
    if not isinstance(ids, list) or len(ids) > MAX_FETCH:
        raise WireError("malformed", f"ids must be an array of at most {MAX_FETCH} bin 32")
    return sorted({i for i in ids if isinstance(i, bytes) and len(i) == reconcile.ID_BYTES})


def _unpack(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(
            body, raw=False, strict_map_key=True, max_array_len=MAX_FETCH, max_map_len=4,
            max_bin_len=reconcile.MAX_ANSWER_BYTES, max_str_len=MAX_FILTER_BYTES,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise WireError("malformed", f"{what} is not MessagePack: {exc}") from None
    if not isinstance(value, dict):
        raise WireError("malformed", f"{what} is not a map")
    return value


@dataclass(frozen=True, slots=True)
class _Held:
    """A built reconciliation set: the log's last seq and the clock when it was last brought up to
    date, when it was last read whole, the set; ``short``: it was at MAX_SET and lost items since,
    so older live ones a whole read would hold may be missing."""

    seq: int
    at: int
    built_at: int
    items: reconcile.ItemSet
    short: bool = False


class Builds:
    """How many sets peers may make this node build for filters it does not keep (see BUILD_EVERY_S)."""

    def __init__(self, *, clock: Clock = wall_clock_ms) -> None:
        self._signers = RateLimiter(1 / BUILD_EVERY_S, BUILD_BURST, clock=clock)
        self._node = RateLimiter(BUILDS_PER_S, NODE_BUILD_BURST, clock=clock, max_peers=1)

    def refused(self, signer: str) -> str | None:
        """None when ``signer`` may have a build now (nothing spent: ``spend`` does), else the
        Retry-After header of the budget that is out."""
        for limiter, key in ((self._signers, signer), (self._node, GLOBAL)):
            if limiter.available(key) < 1:
                return limiter.retry_after_header(key)
        return None

    def spend(self, signer: str) -> None:
        self._signers.take(signer, 1)
        self._node.take(GLOBAL, 1)


class CatchUp:
    """The store reads of reconciliation (in the store's thread)."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms, backend: Backend = NATIVE) -> None:
        self.store = store
        self._clock = clock
        self._backend = backend
        self._tokens: dict[bytes, frozenset[str]] = {}
        self._shared: dict[frozenset[str], frozenset[str]] = {}
        self._sets: dict[str, _Held] = {}  # by filter
        self._intents: _Held | None = None  # every live intent's: what token filters are first built from

    def kept(self, filter_text: str) -> bool:
        """Whether a set for ``filter_text`` is kept (a message over it updates it, not builds it).
        Asked from the event loop while the store's thread may change the sets: one dict lookup."""
        return filter_text in self._sets

    def items(self, filter_text: str = ALL) -> reconcile.ItemSet:
        """This node's reconciliation set for ``filter_text`` (checked by ``parse_filter``). A set
        built before is updated with what changed since (envelopes added, withdrawn or expired: a few
        indexed reads) rather than built again: reading and building a set of 200,000 takes the
        store's thread about a second, and peers may send many messages a second while it ingests."""
        tokens = parse_filter(filter_text)
        now = self._clock()
        last = self.store.query("SELECT max(seq) AS s FROM envelopes")[0]["s"] or 0
        held = self._sets.get(filter_text)
        if held is not None and (held.seq, held.at) == (last, now):
            return held.items
        updated = None if held is None else self._updated(held, tokens, last, now, intents=tokens is not None)
        if updated is None:
            updated = self._whole(tokens, last, now)
        self._sets.pop(filter_text, None)
        while len(self._sets) >= MAX_SETS:
            self._sets.pop(next(iter(self._sets)))  # the oldest (at most MAX_SETS: no quadratic pops)
        self._sets[filter_text] = updated
        return updated.items

    def _whole(self, tokens: frozenset[str] | None, last: int, now: int) -> _Held:
        """A set built whole: every live envelope, or those of the live intents (the newest MAX_SET,
        kept up to date as a set of their own) whose tokens meet ``tokens``. So a filter asked for the
        first time costs a pass over the intents' cached tokens, not a read of the whole log (0.4 s
        at 200,000), however many filters peers ask for."""
        if tokens is None:
            return _Held(last, now, now, reconcile.ItemSet(self._set_rows(now, intents_only=False)))
        base = self._intents
        if base is not None and (base.seq, base.at) != (last, now):
            base = self._updated(base, None, last, now, intents=True)
        if base is None:
            base = _Held(last, now, now, reconcile.ItemSet(self._set_rows(now, intents_only=True)))
        self._intents = base
        ordered = base.items.items
        known = self._tokens_of([i for _, i in ordered])
        matching = reconcile.ItemSet((c, i) for c, i in ordered if not known.get(i, _NONE).isdisjoint(tokens))
        return _Held(last, now, base.built_at, matching, base.short)

    def _updated(
        self, held: _Held, tokens: frozenset[str] | None, last: int, now: int, *, intents: bool
    ) -> _Held | None:
        """``held`` (a set of every live envelope, or of the live ``intents`` meeting ``tokens`` when
        given) with what changed since it was built, or None when it must be built whole again: too
        many changes, a clock gone back, or a set that is ``short`` REBUILD_MS after its read."""
        if now < held.at or last < held.seq:
            return None
        limit = [MAX_CHANGES + 1]
        kind = "kind = 'intent' AND " if intents else ""
        added = self.store.query(
            f"SELECT created_at, id FROM envelopes WHERE seq > ? AND {kind}{_LIVE} LIMIT ?",
            [held.seq, now, *sorted(DIRECT_KINDS), *limit],
        )
        ended = self.store.query(
            "SELECT ref AS id FROM envelopes WHERE seq > ? AND kind = 'withdraw' AND ref IS NOT NULL LIMIT ?",
            [held.seq, *limit],
        ) + self.store.query(
            "SELECT id FROM envelopes WHERE expires_at > ? AND expires_at <= ? LIMIT ?", [held.at, now, *limit]
        )
        if len(added) > MAX_CHANGES or len(ended) > MAX_CHANGES:
            return None
        removed = {bytes(r["id"]) for r in ended}
        short = held.short or (bool(removed) and len(held.items) >= MAX_SET)
        if short and now - held.built_at >= REBUILD_MS:
            return None
        for i in removed:  # what left every set leaves the token cache too
            self._tokens.pop(i, None)
        new = [(r["created_at"], bytes(r["id"])) for r in added]
        if tokens is not None and new:
            known = self._tokens_of([i for _, i in new])
            new = [(c, i) for c, i in new if not known.get(i, _NONE).isdisjoint(tokens)]
        items = held.items.with_changes(new, removed) if new or removed else held.items
        items = items.newest(MAX_SET)  # as a whole read keeps them
        return _Held(last, now, held.built_at, items, short)

    def _set_rows(self, now: int, *, intents_only: bool) -> list[tuple[int, bytes]]:
        """``(created, id)`` of the set's live envelopes (or intents), newest first, at most MAX_SET:
        a whole read, done only when the set of every envelope or that of the intents (which token
        filters are built from) cannot be brought up to date."""
        kind = "kind = 'intent' AND " if intents_only else ""
        found = self.store.query(
            f"SELECT created_at, id FROM envelopes WHERE {kind}{_LIVE} ORDER BY created_at DESC, id DESC LIMIT ?",
            [now, *sorted(DIRECT_KINDS), MAX_SET],
        )
        return [(r["created_at"], bytes(r["id"])) for r in found]

    def _tokens_of(self, ids: list[bytes]) -> dict[bytes, frozenset[str]]:
        """The ``tokens`` of each intent, decoded once and remembered (at most MAX_CACHED: those of
        the last set asked, which is the newest MAX_SET live intents, are kept)."""
        missing = [i for i in ids if i not in self._tokens]
        for start in range(0, len(missing), 4096):
            where, params = id_in(missing[start : start + 4096])
            for r in self.store.query(f"SELECT id, raw FROM envelopes WHERE {where}", params):
                tokens = _intent_tokens(bytes(r["raw"]), self._backend)
                self._tokens[bytes(r["id"])] = self._shared.setdefault(tokens, tokens)  # one copy of each token set
        found = {i: self._tokens[i] for i in ids if i in self._tokens}
        if len(self._tokens) > MAX_CACHED:  # rebuilt, not popped one by one from the front (quadratic)
            self._tokens = found
        if len(self._shared) > MAX_CACHED:
            self._shared = {}
        return found

    def own_filter(self) -> str:
        """The filter this node reconciles with: a vendor's subscriptions' (the first token of each,
        which every intent matching it carries), ``""`` for a node without subscriptions."""
        firsts = []
        for row in self.store.query("SELECT spec FROM subscriptions ORDER BY id"):
            try:
                spec_tokens = json.loads(row["spec"]).get("tokens") or []
            except (ValueError, AttributeError):
                return ALL  # a subscription we cannot read: take everything rather than miss its intents
            if not spec_tokens:
                return ALL
            firsts.append(min(spec_tokens))
        return token_filter(firsts)

    def by_ids(self, ids: Sequence[bytes]) -> list[tuple[int, bytes]]:
        """The ``[ttl, envelope]`` of those of ``ids`` (32 bytes each) that are in the set, capped in bytes."""
        if not ids:
            return []
        where, params = id_in(ids)
        rows = self.store.query(
            f"SELECT ttl, raw FROM envelopes WHERE {where} AND {_LIVE} ORDER BY seq",
            [*params, self._clock(), *sorted(DIRECT_KINDS)],
        )
        out, size = [], 0
        for r in rows:
            size += len(r["raw"]) + 16
            if size > wire.MAX_BATCH_BYTES - 64 and out:
                break  # the asker asks again for what is still missing
            out.append((r["ttl"], bytes(r["raw"])))
        return out


def _intent_tokens(raw: bytes, backend: Backend) -> frozenset[str]:
    """The ``tokens`` of a held intent's body (empty when it has none readable: it matches no filter)."""
    try:
        body = backend.decode_envelope(raw)[5]
        tokens = body.get("tokens") if isinstance(body, dict) else None
    except Exception:  # held envelopes were verified on ingest; a surprise must not fail the request
        return frozenset()
    return frozenset(t for t in tokens if isinstance(t, str)) if isinstance(tokens, list) else frozenset()
