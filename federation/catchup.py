"""Catch-up by set reconciliation (PROTOCOL.md section 13): the bodies of ``POST /v1/reconcile`` and
``POST /v1/gossip/ids``, and the two store reads behind them (the set, the envelopes by id).

The set a node reconciles is the ``(created, id)`` of the live gossiped envelopes it would serve on a
pull page: not expired, not direct (those go to their addressee's inbox), not an intent a held
withdrawal ended. It is read newest first and capped at ``MAX_SET`` items, so one request costs a
bounded query however large the log grows; older items beyond the cap are left to cursor pulls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgpack

from federation import wire
from federation.kinds import DIRECT_KINDS
from node import reconcile
from node.errors import WireError
from node.store import Clock, Store, wall_clock_ms

CAPABILITY = "reconcile/1"  # advertised in GET /v1/node's "gossip" list
MAX_SET = 200_000  # items in the set one reconciliation covers (newest first)
MAX_FETCH = wire.MAX_ITEMS  # ids in one POST /v1/gossip/ids
MAX_FILTER = 1024  # characters of a filter
ALL = ""  # the only filter served today: every gossiped envelope

_LIVE = f"""expires_at > ? AND recipient IS NULL AND kind NOT IN ({", ".join("?" * len(DIRECT_KINDS))})
    AND NOT (kind = 'intent' AND EXISTS (SELECT 1 FROM envelopes w WHERE w.kind = 'withdraw'
                                         AND w.ref = envelopes.id))"""


def encode_request(filter_text: str, msg: bytes) -> bytes:
    return msgpack.packb({"filter": filter_text, "msg": msg}, use_bin_type=True)


def decode_request(body: bytes) -> tuple[str, bytes]:
    """``{"filter": text, "msg": bin}`` → (filter, msg); WireError when malformed or too large."""
    if len(body) > reconcile.MAX_MESSAGE_BYTES + MAX_FILTER + 64:
        raise WireError("too_large", f"a reconcile request is at most {reconcile.MAX_MESSAGE_BYTES} bytes of msg")
    value = _unpack(body, "the reconcile request")
    filter_text, msg = value.get("filter"), value.get("msg")
    if not isinstance(filter_text, str) or len(filter_text) > MAX_FILTER:
        raise WireError("malformed", f"filter must be text of at most {MAX_FILTER} characters")
    if not isinstance(msg, bytes):
        raise WireError("malformed", "msg must be bin")
    if filter_text != ALL:
        raise WireError("malformed", 'this node reconciles the filter "" (all gossip) only')
    return filter_text, msg


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


def decode_ids(body: bytes) -> list[str]:
    """``{"ids": [bin 32, …]}`` (at most MAX_FETCH) → hex ids; ids that are not 32 bytes are ignored."""
    if len(body) > MAX_FETCH * 35 + 64:
        raise WireError("too_large", f"at most {MAX_FETCH} ids per request")
    ids = _unpack(body, "the ids request").get("ids")
    if not isinstance(ids, list) or len(ids) > MAX_FETCH:
        raise WireError("malformed", f"ids must be an array of at most {MAX_FETCH} bin 32")
    return sorted({i.hex() for i in ids if isinstance(i, bytes) and len(i) == reconcile.ID_BYTES})


def _unpack(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(
            body, raw=False, strict_map_key=True, max_array_len=MAX_FETCH, max_map_len=4,
            max_bin_len=reconcile.MAX_ANSWER_BYTES, max_str_len=MAX_FILTER,
        )
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise WireError("malformed", f"{what} is not MessagePack: {exc}") from None
    if not isinstance(value, dict):
        raise WireError("malformed", f"{what} is not a map")
    return value


class CatchUp:
    """The store reads of reconciliation (in the store's thread)."""

    def __init__(self, store: Store, *, clock: Clock = wall_clock_ms) -> None:
        self.store = store
        self._clock = clock

    def items(self) -> reconcile.ItemSet:
        """This node's reconciliation set for the filter ``""``."""
        rows = self.store.query(
            f"SELECT created_at, id FROM envelopes WHERE {_LIVE} ORDER BY created_at DESC, id DESC LIMIT ?",
            [self._clock(), *sorted(DIRECT_KINDS), MAX_SET],
        )
        return reconcile.ItemSet((r["created_at"], bytes.fromhex(r["id"])) for r in rows)

    def by_ids(self, ids: Sequence[str]) -> list[tuple[int, bytes]]:
        """The ``[ttl, envelope]`` of those of ``ids`` (hex) that are in the set, capped in bytes."""
        if not ids:
            return []
        rows = self.store.query(
            f"SELECT ttl, raw FROM envelopes WHERE id IN (SELECT value FROM json_each(?)) AND {_LIVE} ORDER BY seq",
            [json.dumps(list(ids)), self._clock(), *sorted(DIRECT_KINDS)],
        )
        out, size = [], 0
        for r in rows:
            size += len(r["raw"]) + 16
            if size > wire.MAX_BATCH_BYTES - 64 and out:
                break  # the asker asks again for what is still missing
            out.append((r["ttl"], bytes(r["raw"])))
        return out
