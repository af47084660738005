"""Set reconciliation by range fingerprints, in the style of negentropy (NIP-77), sans-IO.

Two nodes each hold a set of items ``(timestamp, id)`` — the live envelopes matching one token filter,
``timestamp`` the envelope's ``created`` (ms), ``id`` its 32 bytes — and want to learn which items each
lacks, sending little more than the difference. Items are ordered by ``(timestamp, id)``. A *range* is
the items from a lower bound (inclusive) to an upper bound (exclusive); its *fingerprint* is

    SHA-256("vrm-reconcile/1" || sum || count)[:16]

where ``sum`` is the ids read as little-endian 256-bit integers, added modulo 2^256 (32 bytes, little
endian) and ``count`` the number of items (8 bytes, big endian). Sums make a range's fingerprint
computable from prefix sums in O(log n), for any bounds.

The initiator sends its whole set's fingerprint; the peer compares it with its own over the same range:
equal ranges are done; a differing range small enough (``id_limit`` items on the side that found the
difference) is answered with its ids; a larger one is split into ``buckets`` ranges of equal item count,
each with its fingerprint, and so on down. Ranges where the sets agree stop at the first comparison, so
the rounds grow with the logarithm of the set size and the bytes with the size of the difference. The
responder keeps no state between messages: every message carries all its ranges' bounds.

Each side's work is bounded whatever the other sends (PROTOCOL.md section 13): a responder's answer
stays within MAX_ANSWER_BYTES (past its budget, ranges are answered by fingerprint and described again
next round); an initiator takes an id-list answer only over the bounds of an id list it sent, naming
at most ``2 * max(id_limit, n)`` ids for a list of ``n``, and stops once it needs ``max_need`` ids.

Messages are canonical MessagePack (PROTOCOL.md section 1): ``[1, [range, …]]``, ranges in ascending
order and contiguous, the first starting at the lowest bound and the last ending at infinity. A range
is ``[upper, mode, payload]``: ``upper`` is ``[timestamp, id_prefix]`` (the shortest prefix of the id
that separates the range's last item from the next one; empty when the timestamps differ) or nil
for infinity; ``mode`` 0 skip (payload nil), 1 fingerprint (bin 16), 2 id list (array of bin 32,
in ascending order of the ids), 3 id-list answer (``[ids the answerer holds and the list lacked, bitmap]``: bit ``i``
(byte ``i // 8``, bit ``i % 8``, lsb first) set when the answerer lacks the list's ``i``-th id).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from node.errors import WireError
from node.reference import codec

VERSION = 1
ID_BYTES = 32
FINGERPRINT_BYTES = 16
SKIP, FINGERPRINT, ID_LIST, ID_ANSWER = 0, 1, 2, 3
MAX_TIMESTAMP = 2**64 - 1
MAX_RANGES = 65_536  # ranges in one message (an answer has up to 16 per range asked about)
MAX_MESSAGE_BYTES = 64 * 1024  # an initiator's message (what a responder accepts)
MAX_ANSWER_BYTES = 2 * 1024 * 1024  # a responder's answer: at most ~16x the message it answers
MAX_IDS = MAX_ANSWER_BYTES // 34  # ids in one message, in all its lists
BUDGET = MAX_MESSAGE_BYTES - 4096  # an initiator's message stops describing ranges here
ANSWER_BUDGET = MAX_ANSWER_BYTES - 4096  # a responder's answer, in _cost estimates (room for the frame)
RANGE_COST = 64  # the most a skip or fingerprint range encodes to (``_cost``)
# Ids one reconciliation may find the initiator needs: four POST /v1/gossip/ids of 1000, which with
# the rounds' 100 tokens each fit the 5,000 rate tokens a peer grants at once (federation/app.py), so
# the fetch is not refused half way. The rest waits for the next reconciliation (what was fetched is
# then held); a peer naming junk ids costs the initiator this much memory and four requests at most.
MAX_NEED = 4_000
_MOD = 2**256
_TAG = b"vrm-reconcile/1"

Item = tuple[int, bytes]  # (timestamp ms, 32-byte id)
Bound = tuple[int, bytes] | None  # (timestamp, id prefix) or None for infinity


def fingerprint(ids_sum: int, count: int) -> bytes:
    """The fingerprint of a range from the sum of its ids (mod 2^256) and its item count."""
    return hashlib.sha256(_TAG + (ids_sum % _MOD).to_bytes(32, "little") + count.to_bytes(8, "big")).digest()[
        :FINGERPRINT_BYTES
    ]


def fingerprint_of(ids: Iterable[bytes]) -> bytes:
    ids = list(ids)
    return fingerprint(sum(int.from_bytes(i, "little") for i in ids), len(ids))


def _below(item: Item, bound: Bound) -> bool:
    """Whether ``item`` sorts before ``bound`` (an id is compared with the prefix padded with zeros)."""
    if bound is None:
        return True
    ts, prefix = bound
    if item[0] != ts:
        return item[0] < ts
    return item[1] < prefix + bytes(ID_BYTES - len(prefix))


def separating_bound(prev: Item, nxt: Item) -> Bound:
    """The shortest bound above ``prev`` and at most ``nxt``."""
    if prev[0] != nxt[0]:
        return (nxt[0], b"")
    shared = 0
    while shared < ID_BYTES and prev[1][shared] == nxt[1][shared]:
        shared += 1
    return (nxt[0], nxt[1][: shared + 1])


class ItemSet:
    """A sorted set of items with prefix sums, so any range's fingerprint is two bisections away."""

    def __init__(self, items: Iterable[Item]) -> None:
        # sorted, not through a set: a store's rows come in order (descending), which sorts in one pass
        ordered = sorted(items)
        if any(a == b for a, b in zip(ordered, itertools.islice(ordered, 1, None))):
            ordered = [item for item, _ in itertools.groupby(ordered)]
        self.items: list[Item] = ordered
        # the timestamps' bounds are the first and the last (a responder's set is up to 200,000)
        if ordered and (
            not 0 <= ordered[0][0] <= ordered[-1][0] <= MAX_TIMESTAMP or any(len(i) != ID_BYTES for _, i in ordered)
        ):
            raise ValueError("an item is (timestamp 0..2^64-1, 32-byte id)")
        # running sums, reduced mod 2^256 by ``fingerprint`` (one pass in C, not a Python loop)
        self._sums = [0, *itertools.accumulate(int.from_bytes(i, "little") for _, i in ordered)]

    def __len__(self) -> int:
        return len(self.items)

    def with_changes(self, added: Iterable[Item], removed: Container[bytes]) -> ItemSet:
        """A new set: this one's items but those whose id is in ``removed``, and ``added`` (two sorted
        runs: sorted in one merge pass). New envelopes are mostly the newest: with nothing removed and
        every added item after the last, the items and sums are only extended."""
        checked = ItemSet(added)  # the added items' own checks (and sums), sorted
        new = checked.items
        if not removed and new and (not self.items or new[0] > self.items[-1]):
            base = self._sums[-1]
            return ItemSet._of(self.items + new, self._sums + [base + x for x in checked._sums[1:]])
        # Otherwise the set is spliced: runs of the old items between the changes keep their sums,
        # shifted by what was taken out or put in before them (not summed again: re-reading 200,000
        # ids' values cost 0.1 s a message when anything had expired).
        items, sums = self.items, self._sums
        gone = [k for k, (_, id_) in enumerate(items) if id_ in removed] if removed else []
        runs: list[range] = []  # the old items kept, as runs of positions between those removed
        start = 0
        for k in gone:
            if k > start:
                runs.append(range(start, k))
            start = k + 1
        if start < len(items):
            runs.append(range(start, len(items)))
        pieces: Sequence[range | Item] = _merged(runs, items, new) if new else runs
        return ItemSet._of(*_spliced(pieces, items, sums))

    def newest(self, count: int) -> ItemSet:
        """The ``count`` greatest items (all when fewer). The sums are kept as they are: a range's
        fingerprint needs only their differences."""
        if count >= len(self.items):
            return self
        return ItemSet._of(self.items[len(self.items) - count :], self._sums[len(self.items) - count :])

    @classmethod
    def _of(cls, items: list[Item], sums: list[int]) -> ItemSet:
        made = cls.__new__(cls)
        made.items, made._sums = items, sums
        return made

    def index(self, bound: Bound) -> int:
        """The index of the first item not below ``bound``."""
        if bound is None:
            return len(self.items)
        ts, prefix = bound
        return bisect.bisect_left(self.items, (ts, prefix + bytes(ID_BYTES - len(prefix))))

    def fingerprint(self, lo: int, hi: int) -> bytes:
        return fingerprint(self._sums[hi] - self._sums[lo], hi - lo)

    def ids(self, lo: int, hi: int) -> list[bytes]:
        """The ids of items lo..hi, in ascending order of the ids (as id lists carry them)."""
        return sorted(id_ for _, id_ in self.items[lo:hi])


def _merged(runs: list[range], items: list[Item], new: list[Item]) -> list[range | Item]:
    """``runs`` (runs of positions in ``items``, ascending) with the sorted ``new`` items put in place;
    an item already in a run is not added twice."""
    out: list[range | Item] = []
    at = 0
    for run in runs:
        a, b = run.start, run.stop
        while a < b:
            if at == len(new):
                out.append(range(a, b))
                break
            k = bisect.bisect_left(items, new[at], a, b)
            if k > a:
                out.append(range(a, k))
            if k < b and items[k] == new[at]:  # held already: the old item stays
                at += 1
                out.append(range(k, k + 1))
                a = k + 1
            elif k < b:
                out.append(new[at])
                at += 1
                a = k
            else:
                break
    out.extend(new[at:])
    return out


def _spliced(pieces: Sequence[range | Item], items: list[Item], sums: list[int]) -> tuple[list[Item], list[int]]:
    """The items and running sums of ``pieces`` (runs of positions in ``items``, and added items) in
    order. A run of old items keeps its sums shifted by one amount; the longest is not shifted at all
    (a fingerprint needs only differences of the sums)."""
    shifts: list[int] = []
    acc = 0  # the new running sum before the piece
    for piece in pieces:
        if isinstance(piece, range):
            shifts.append(acc - sums[piece.start])
            acc += sums[piece.stop] - sums[piece.start]
        else:
            shifts.append(0)
            acc += int.from_bytes(piece[1], "little")
    runs = [(len(piece), i) for i, piece in enumerate(pieces) if isinstance(piece, range)]
    ref = shifts[max(runs)[1]] if runs else 0
    out_items: list[Item] = []
    out_sums = [-ref]
    for piece, shift in zip(pieces, shifts):
        if not isinstance(piece, range):
            out_items.append(piece)
            out_sums.append(out_sums[-1] + int.from_bytes(piece[1], "little"))
            continue
        a, b = piece.start, piece.stop
        out_items += items[a:b]
        delta = shift - ref
        out_sums += sums[a + 1 : b + 1] if delta == 0 else [x + delta for x in sums[a + 1 : b + 1]]
    return out_items, out_sums


@dataclass(frozen=True, slots=True)
class Range:
    upper: Bound
    mode: int
    payload: Any = None  # bytes (fingerprint), list[bytes] (ids), (list[bytes], bytes) (answer)


@dataclass(slots=True)
class Outcome:
    """What the initiator learnt: ``need`` (ids the peer holds and we lack: fetch them) and ``have``
    (ids we hold and the peer lacks: offer them). ``capped``: ``need`` reached the initiator's
    ``max_need`` and reconciliation stopped there (what it did not find, the next one finds)."""

    need: set[bytes] = field(default_factory=set)
    have: set[bytes] = field(default_factory=set)
    capped: bool = False


# -- the codec ----------------------------------------------------------------------------------------


def encode(ranges: Sequence[Range]) -> bytes:
    body = []
    for r in ranges:
        upper = None if r.upper is None else [r.upper[0], r.upper[1]]
        if r.mode == ID_ANSWER:
            payload: Any = [list(r.payload[0]), r.payload[1]]
        elif r.mode == ID_LIST:
            payload = list(r.payload)
        else:
            payload = r.payload
        body.append([upper, r.mode, payload])
    return codec.encode([VERSION, body])


def _bad(detail: str) -> WireError:
    return WireError("malformed", f"reconciliation message: {detail}")


def _id(value: Any) -> bytes:
    if not isinstance(value, bytes) or len(value) != ID_BYTES:
        raise _bad("an id is a bin of 32 bytes")
    return value


def _ascending(ids: list[bytes]) -> list[bytes]:
    if any(a >= b for a, b in zip(ids, ids[1:])):
        raise _bad("ids must be strictly ascending")
    return ids


def decode(body: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> list[Range]:
    """A message from a peer, checked in full (shape, sizes, order) before anything is done with it."""
    if len(body) > max_bytes:
        raise WireError("too_large", f"a reconciliation message is at most {max_bytes} bytes")
    try:
        value = codec.decode(body, max_bytes)
    except Exception as exc:  # the reference codec's typed refusals, whatever they are
        raise _bad(f"not canonical MessagePack ({exc})") from None
    version_ok = isinstance(value, list) and len(value) == 2 and type(value[0]) is int and value[0] == VERSION  # not True
    if not version_ok or not isinstance(value[1], list):
        raise _bad("expected [1, [range, ...]]")
    if len(value[1]) > MAX_RANGES:
        raise WireError("too_large", f"at most {MAX_RANGES} ranges")
    ranges: list[Range] = []
    total_ids = 0
    previous: Bound = (0, b"")
    for raw in value[1]:
        if not isinstance(raw, list) or len(raw) != 3 or not isinstance(raw[1], int) or isinstance(raw[1], bool):
            raise _bad("a range is [upper, mode, payload]")
        upper_raw, mode, payload = raw
        if previous is None:
            raise _bad("a range after the one ending at infinity")
        if upper_raw is None:
            upper: Bound = None
        else:
            if (
                not isinstance(upper_raw, list)
                or len(upper_raw) != 2
                or not isinstance(upper_raw[0], int)
                or isinstance(upper_raw[0], bool)
                or not 0 <= upper_raw[0] <= MAX_TIMESTAMP
                or not isinstance(upper_raw[1], bytes)
                or len(upper_raw[1]) > ID_BYTES
            ):
                raise _bad("a bound is [timestamp 0..2^64-1, id prefix of at most 32 bytes]")
            upper = (upper_raw[0], upper_raw[1])
            if (upper[0], upper[1] + bytes(ID_BYTES - len(upper[1]))) <= (
                previous[0],
                previous[1] + bytes(ID_BYTES - len(previous[1])),
            ) and ranges:
                raise _bad("bounds must be strictly ascending")
        if mode == SKIP:
            if payload is not None:
                raise _bad("a skip range has no payload")
        elif mode == FINGERPRINT:
            if not isinstance(payload, bytes) or len(payload) != FINGERPRINT_BYTES:
                raise _bad("a fingerprint is a bin of 16 bytes")
        elif mode == ID_LIST:
            if not isinstance(payload, list):
                raise _bad("an id list is an array of ids")
            payload = _ascending([_id(v) for v in payload])
            total_ids += len(payload)
        elif mode == ID_ANSWER:
            if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], list)):
                raise _bad("an id-list answer is [ids, bitmap]")
            if not isinstance(payload[1], bytes):
                raise _bad("the bitmap is a bin")
            ids = _ascending([_id(v) for v in payload[0]])
            total_ids += len(ids)
            payload = (ids, payload[1])
        else:
            raise _bad(f"unknown mode {mode}")
        if total_ids > MAX_IDS:
            raise WireError("too_large", f"at most {MAX_IDS} ids in a message")
        ranges.append(Range(upper, mode, payload))
        previous = upper
    if ranges and ranges[-1].upper is not None:
        raise _bad("the last range must end at infinity")
    return ranges


# -- the protocol -------------------------------------------------------------------------------------


@dataclass
class Reconciler:
    """One side's state machine. The initiator calls ``initiate()``, sends the bytes, and passes each
    answer to ``reconcile(answer)``, which returns the next message or None when done; ``outcome``
    then holds ``need`` and ``have``. The responder answers each message with ``reconcile`` too (a
    fresh Reconciler per message is fine: it keeps nothing between them). Pure: no IO, no trio, so a
    caller may run it on a worker thread."""

    items: ItemSet
    initiator: bool = False
    buckets: int = 16
    id_limit: int = 32
    max_need: int = MAX_NEED
    answer_budget: int = ANSWER_BUDGET  # a responder's, in _cost estimates
    outcome: Outcome = field(default_factory=Outcome)
    rounds: int = 0
    # the initiator's id lists in the message it last sent: (lower key, upper key) -> ids listed
    _lists_sent: dict[tuple[Any, Any], int] = field(default_factory=dict, repr=False)

    def initiate(self) -> bytes:
        self.initiator = True
        self.rounds = 1
        return self._send(self._describe(0, len(self.items), None))

    def reconcile(self, message: bytes) -> bytes | None:
        ranges = decode(message, MAX_ANSWER_BYTES if self.initiator else MAX_MESSAGE_BYTES)
        lists_answered, self._lists_sent = self._lists_sent, {}
        out: list[Range] = []
        lo_bound: Bound = (0, b"")
        size = 0
        answer_full = False
        for k, r in enumerate(ranges):
            lo, hi = self.items.index(lo_bound), self.items.index(r.upper)
            if self.initiator and size > BUDGET:
                # Our message is full: the rest goes as one fingerprint of ours, so the other side
                # takes it up again next round (the ranges before it made progress).
                out.append(Range(None, FINGERPRINT, self.items.fingerprint(lo, len(self.items))))
                break
            if self.initiator:
                part = self._on_answer(r, lo, hi, lo_bound, lists_answered)
            else:
                part = [] if answer_full else self._answer(r, lo, hi)
                # Every range still to answer may need a fingerprint (at most RANGE_COST each): keep
                # room for them, so the answer stays within MAX_ANSWER_BYTES whatever it was asked.
                left = RANGE_COST * (len(ranges) - k - 1)
                if answer_full or size + sum(_cost(x) for x in part) + left > self.answer_budget:
                    answer_full = True
                    part = [self._answer_by_fingerprint(r, lo, hi)]
            out += part
            size += sum(_cost(x) for x in part)
            lo_bound = r.upper if r.upper is not None else lo_bound
        out = _merge_skips(out)
        if not self.initiator:
            return encode(out)
        if self.outcome.capped or all(r.mode == SKIP for r in out):
            return None
        self.rounds += 1
        return self._send(out)

    def _send(self, out: list[Range]) -> bytes:
        """The initiator's next message; its id lists are remembered, as the only ranges an answer
        may carry an ID_ANSWER for."""
        lower: Bound = (0, b"")
        for r in out:
            if r.mode == ID_LIST:
                self._lists_sent[(_key(lower), _key(r.upper))] = len(r.payload)
            lower = r.upper
        return encode(out)

    def _settle(self, r: Range, lo: int, hi: int) -> list[Range] | None:
        """Either side's reply to a skip or a fingerprint (None for the id modes): a skip stays one, a
        fingerprint equal to ours becomes one, another is described."""
        if r.mode == SKIP:
            return [Range(r.upper, SKIP)]
        if r.mode == FINGERPRINT:
            if self.items.fingerprint(lo, hi) == r.payload:
                return [Range(r.upper, SKIP)]
            return self._describe(lo, hi, r.upper)
        return None

    def _answer(self, r: Range, lo: int, hi: int) -> list[Range]:
        """The responder's answer to one range of the initiator's message."""
        settled = self._settle(r, lo, hi)
        if settled is not None:
            return settled
        if r.mode == ID_LIST:
            return self._on_list(lo, hi, r.upper, r.payload)
        raise _bad("an id-list answer is sent to the initiator only")

    def _answer_by_fingerprint(self, r: Range, lo: int, hi: int) -> Range:
        """A range answered once the answer is full: our fingerprint where the sides may differ, so
        the initiator describes it again next round (as its own BUDGET cut does)."""
        if r.mode == SKIP:
            return Range(r.upper, SKIP)
        if r.mode == ID_ANSWER:
            raise _bad("an id-list answer is sent to the initiator only")
        ours = self.items.fingerprint(lo, hi)
        if r.mode == FINGERPRINT and ours == r.payload:
            return Range(r.upper, SKIP)
        return Range(r.upper, FINGERPRINT, ours)

    def _on_answer(self, r: Range, lo: int, hi: int, lower: Bound, lists_answered: dict) -> list[Range]:
        """The initiator's reading of one range of the responder's answer."""
        settled = self._settle(r, lo, hi)
        if settled is not None:
            return settled
        if r.mode == ID_LIST:  # the peer's whole range: we can tell both differences ourselves
            mine, other = set(self.items.ids(lo, hi)), set(r.payload)
            self._need(other - mine)
            self.outcome.have.update(mine - other)
            return [Range(r.upper, SKIP)]
        # ID_ANSWER: only to an id list we sent, over exactly its bounds (the peer must not choose
        # which of our items it answers about, nor how many of its own it names).
        listed = lists_answered.get((_key(lower), _key(r.upper)))
        if listed is None:
            raise _bad("an id-list answer over a range we sent no id list for")
        extra, bitmap = r.payload
        if len(bitmap) != (listed + 7) // 8:
            raise _bad("the bitmap does not cover the id list")
        if len(extra) > 2 * max(self.id_limit, listed):
            # a responder holding more there splits the range instead (``_on_list``)
            raise _bad("an id-list answer names more ids than the list allows")
        ours = self.items.ids(lo, hi)
        mine = set(ours)
        self._need(i for i in extra if i not in mine)
        self.outcome.have.update(i for k, i in enumerate(ours) if bitmap[k // 8] >> (k % 8) & 1)
        return [Range(r.upper, SKIP)]

    def _need(self, ids: Iterable[bytes]) -> None:
        """Add to ``need`` up to ``max_need`` ids; past it, stop reconciling (``capped``)."""
        need = self.outcome.need
        for id_ in ids:
            if len(need) >= self.max_need:
                self.outcome.capped = True
                return
            need.add(id_)

    def _on_list(self, lo: int, hi: int, upper: Bound, theirs: list[bytes]) -> list[Range]:
        """The responder's answer to the initiator's id list over lo..hi."""
        ours = self.items.ids(lo, hi)
        if len(ours) > max(self.id_limit, len(theirs)) * 2:
            # Far more here than there: split, so no answer carries more ids than a list would.
            return self._split(lo, hi, upper)
        mine = set(ours)
        other = set(theirs)
        bitmap = bytearray((len(theirs) + 7) // 8)
        for k, id_ in enumerate(theirs):
            if id_ not in mine:
                bitmap[k // 8] |= 1 << (k % 8)
        return [Range(upper, ID_ANSWER, ([i for i in ours if i not in other], bytes(bitmap)))]

    def _describe(self, lo: int, hi: int, upper: Bound) -> list[Range]:
        """A differing range (or the whole set): its ids when few, else buckets with fingerprints."""
        if hi - lo <= self.id_limit:
            return [Range(upper, ID_LIST, self.items.ids(lo, hi))]
        return self._split(lo, hi, upper)

    def _split(self, lo: int, hi: int, upper: Bound) -> list[Range]:
        n = hi - lo
        parts = min(self.buckets, n)
        out: list[Range] = []
        start = lo
        for b in range(1, parts + 1):
            end = lo + n * b // parts
            bound = upper if b == parts else separating_bound(self.items.items[end - 1], self.items.items[end])
            out.append(Range(bound, FINGERPRINT, self.items.fingerprint(start, end)))
            start = end
        return out


def _key(bound: Bound) -> tuple[int, bytes] | None:
    """A bound as the position it names (prefixes padded as ``_below`` pads them), for comparing."""
    return None if bound is None else (bound[0], bound[1] + bytes(ID_BYTES - len(bound[1])))


def _cost(r: Range) -> int:
    """An upper estimate of a range's encoded size."""
    # a range is a 1-byte array header, the bound (at most 44 bytes), the mode and the payload
    if r.mode == ID_LIST:
        return 50 + 34 * len(r.payload)
    if r.mode == ID_ANSWER:
        return 56 + 34 * len(r.payload[0]) + len(r.payload[1])
    return RANGE_COST


def _merge_skips(ranges: list[Range]) -> list[Range]:
    """Adjacent skip ranges become one (the later bound covers both)."""
    out: list[Range] = []
    for r in ranges:
        if out and out[-1].mode == SKIP and r.mode == SKIP:
            out[-1] = r
        else:
            out.append(r)
    return out


def reconcile_sets(
    ours: Iterable[Item], theirs: Iterable[Item], *, buckets: int = 16, id_limit: int = 32
) -> tuple[Outcome, int, int]:
    """Run both sides in memory: (outcome, rounds, bytes sent both ways). For tests and the simulation."""
    a = Reconciler(ItemSet(ours), buckets=buckets, id_limit=id_limit)
    b_items = ItemSet(theirs)
    message: bytes | None = a.initiate()
    sent = 0
    while message is not None:
        sent += len(message)
        answer = Reconciler(b_items, buckets=buckets, id_limit=id_limit).reconcile(message)
        assert answer is not None
        sent += len(answer)
        message = a.reconcile(answer)
    return a.outcome, a.rounds, sent
