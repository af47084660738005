"""Stage 1 of ingest: decode, verify, check intent bodies and match, in ONE native call per batch.

``decode_and_verify`` is the only code that looks at a batch's raw bytes before the pipeline judges
them. It makes one ``Verifier.ingest`` call (node/_native.pyi; its pure-Python twin is
node/reference/ingest.py): with the GIL released the native core decodes every item, computes its id
before any signature check (so an id it remembers as committed, or a copy of an item accepted
earlier in the batch, is a ``duplicate`` without being verified; identical copies are verified
once), checks lifetimes and clocks, verifies the survivors' ZIP-215 signatures in batches spread
over the cores, re-tokenizes each intent's text against its body, and
matches the accepted intents against the vendor's index.

Contract. In: the batch's raw envelopes, ``now`` (ms) and the native index (None: no matching). Out:
one ``Verdicts``, the batch by column rather than an object per item, since most items of a busy
node's batch are duplicates that need nothing but their reason, and most accepted ones are intents
stored and relayed from their fields alone:

- ``codes[i]``: ``Reason.OK`` or the refusal (a verify reason, ``DUPLICATE`` for a remembered id or
  a copy of an item accepted earlier in the batch, or ``INVALID_BODY`` for an intent whose body the
  tokenizer rejects): at most one OK item per id;
- ``decoded(i)``, ``id(i)`` (32 bytes), ``hex_id(i)``: whether it decoded, and then its id;
- ``ok``: the indexes of the OK items; ``kind(i)``, ``author_hex(i)``, ``created(i)``,
  ``expires(i)``, ``raw(i)``: their fields, read from the packed columns;
- ``envelope(i)``: the decoded ``Envelope`` of an OK item, built when asked for (its body is decoded
  only then: no decode, no re-tokenize, no re-validation);
- ``matches(i)``: the subscription ids an accepted intent matched (empty otherwise); ``matched``:
  which of some indexes matched anything; ``leads``: the leads' rows, their bodies' JSON
  written natively in one call (no decode into Python, no dump);
- ``packed_ids``, ``kind_codes``: the id and kind columns themselves; ``intent_rows``: the gossip
  log's rows for some accepted intents, built from the columns (``Pipeline._store``).

``remember_committed`` tells the verifier which ids the store now holds, once their transaction
committed: only then may a later copy skip verification.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

from node.backends import Backend, IngestResultLike, VerifierLike
from node.envelope import Envelope
from node.reasons import Reason

# The last 67 bytes of a canonical envelope are ``"sig": bin8(64)`` then ``"v": 1`` (keys sort
# ``sig`` < ``v``; PROTOCOL.md section 2): the signature is read there instead of decoding again.
_SIG_END = -3
_SIG_START = _SIG_END - 64


class Verdicts:
    """Stage 1's verdicts on one batch, by column (see the module docstring)."""

    __slots__ = ("codes", "ok", "intent_code", "kind_codes", "packed_ids", "_result", "_raws", "_names", "_hex",
                 "_authors", "_authors_hex", "_created", "_expires", "_offsets", "_match_ids")  # fmt: skip

    def __init__(self, result: IngestResultLike, raws: Sequence[bytes], names: Sequence[str]) -> None:
        self.codes: bytes = result.codes
        self.ok = [i for i, code in enumerate(self.codes) if not code]  # Reason.OK is 0
        self._result, self._raws, self._names = result, raws, names
        self.intent_code = names.index("intent")  # the kind code of the common case
        self.packed_ids: bytes = result.ids  # 32 bytes per item
        self.kind_codes: bytes = result.kinds  # an index into the kind names; past them: not decoded
        self._hex = self.packed_ids.hex()  # one conversion for the batch; an item's id is a slice of it
        self._authors = result.authors
        self._authors_hex = self._authors.hex()
        self._created = memoryview(result.created).cast("q")
        self._expires = memoryview(result.expires).cast("q")
        self._offsets = memoryview(result.match_offsets).cast("Q")
        self._match_ids = memoryview(result.match_ids).cast("q")

    def __len__(self) -> int:
        return len(self.codes)

    def decoded(self, i: int) -> bool:
        return self.kind_codes[i] < len(self._names)

    def id(self, i: int) -> bytes:
        return self.packed_ids[32 * i : 32 * i + 32]

    def hex_id(self, i: int) -> str:
        return self._hex[64 * i : 64 * i + 64]

    def kind(self, i: int) -> str:
        return self._names[self.kind_codes[i]]

    def author_hex(self, i: int) -> str:
        return self._authors_hex[64 * i : 64 * i + 64]

    def created(self, i: int) -> int:
        return self._created[i]

    def expires(self, i: int) -> int:
        return self._expires[i]

    def raw(self, i: int) -> bytes:
        return bytes(self._raws[i])

    def envelope(self, i: int) -> Envelope:
        """The ``Envelope`` of OK item ``i`` (its body decoded now)."""
        raw = bytes(self._raws[i])
        # Positional (the field order of Envelope, as node.envelope.decode builds it): half the cost
        # of keywords.
        return Envelope(1, self._names[self.kind_codes[i]], self._authors[32 * i : 32 * i + 32], self._created[i],
                        self._expires[i], self._result.body(i), raw[_SIG_START:_SIG_END], self.id(i), raw)  # fmt: skip

    def duplicates(self, reasons: bytes | bytearray, ttls: Sequence[int]) -> list[tuple[bytes, int]]:
        """``(id, ttls[i])`` of each decoded item whose reason is ``duplicate``, in batch order (in one
        pass over the columns: most of a busy relay's batch)."""
        dup, known = Reason.DUPLICATE, len(self._names)
        return [(id_, ttl) for (id_,), reason, kind, ttl
                in zip(struct.iter_unpack("32s", self.packed_ids), reasons, self.kind_codes, ttls)
                if reason == dup and kind < known]  # fmt: skip

    def intent_fields(self, i: int) -> tuple[bytes, str, str, bytes, int, int, bytes]:
        """(id, hex id, hex author, author, created, expires, raw) of item ``i``, in one call."""
        return (self.packed_ids[32 * i : 32 * i + 32], self._hex[64 * i : 64 * i + 64],
                self._authors_hex[64 * i : 64 * i + 64], self._authors[32 * i : 32 * i + 32], self._created[i],
                self._expires[i], bytes(self._raws[i]))  # fmt: skip

    def matches(self, i: int) -> list[int]:
        start, end = self._offsets[i], self._offsets[i + 1]
        return self._match_ids[start:end].tolist() if end > start else []

    def leads(self, matched: Sequence[tuple[int, list[int]]]) -> list[tuple[str, str, str, str, list[int], int, int]]:
        """The ``Leads.add_matched`` rows of accepted intents, given as (index, subscription ids): their
        texts and bodies' JSON in one native call (``IngestResult.intents_json``), the rest from the
        columns."""
        texts = self._result.intents_json([i for i, _ in matched])
        return [(self._hex[64 * i : 64 * i + 64], self._authors_hex[64 * i : 64 * i + 64], text, body, ids,
                 self._created[i], self._expires[i]) for (i, ids), (text, body) in zip(matched, texts, strict=True)]  # fmt: skip

    def matched(self, indexes: Iterable[int]) -> list[int]:
        """Those of ``indexes`` whose intent matched a subscription."""
        offsets = self._offsets
        return [i for i in indexes if offsets[i + 1] > offsets[i]]

    def forwards(self, indexes: Iterable[int], ttl_out: Sequence[int], ttls: Any,
                 relayed: bool) -> list[tuple[bytes, str, str, None, int, int, bytes]]:  # fmt: skip
        """The pipeline's forwards (``federation.pipeline.Forward``) of the intents at ``indexes``
        from the columns: passed on with ``ttl_out[ttls[i]]``, only while hops remain unless
        ``relayed`` (a tree decides)."""
        ids, hexes, authors, expires, raws = self.packed_ids, self._hex, self._authors_hex, self._expires, self._raws
        return [(ids[32 * i : 32 * i + 32], hexes[64 * i : 64 * i + 64], authors[64 * i : 64 * i + 64], None,
                 expires[i], ttl_out[ttls[i]], bytes(raws[i])) for i in indexes if relayed or ttls[i] > 0]  # fmt: skip

    def intent_rows(self, indexes: Iterable[int], ttl_out: Sequence[int], ttls: Any, now: int,
                    from_peer: str | None) -> list[tuple[Any, ...]]:  # fmt: skip
        """``GossipLog.add_intents`` rows (``INTENT_COLUMNS``) for the intents at ``indexes`` straight
        from the columns, stored with ``ttl_out[ttls[i]]``. Ids, keys and bytes are bytearrays, which
        sqlite3 binds at once (``node.store.blobs``): a slice of a bytearray is one."""
        ids, authors = bytearray(self.packed_ids), bytearray(self._authors)
        created, expires, raws = self._created, self._expires, self._raws
        return [(ids[32 * i : 32 * i + 32], "intent", authors[32 * i : 32 * i + 32], created[i], expires[i],
                 ttl_out[ttls[i]], bytearray(raws[i]), now, from_peer) for i in indexes]  # fmt: skip


def decode_and_verify(
    verifier: VerifierLike, backend: Backend, raws: Sequence[bytes], now: int, index: Any = None
) -> Verdicts:
    """Verify ``raws`` in one native pass (see the module docstring for the contract)."""
    return Verdicts(verifier.ingest(raws, now, index), raws, backend.KINDS)


def remember_committed(verifier: VerifierLike, packed: bytes) -> None:
    """Tell ``verifier`` these ids (32 bytes each, concatenated) are held now (their transaction
    committed): one call."""
    if packed:
        verifier.remember(packed)
