"""Set reconciliation (node/reconcile.py): two nodes end up knowing exactly what each lacks, in few
rounds, and a peer's message is refused whole when malformed."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import reconcile
from node.errors import WireError
from node.reconcile import ItemSet, Reconciler, fingerprint_of, reconcile_sets, separating_bound


def item(n: int, ts: int | None = None) -> tuple[int, bytes]:
    return (n // 3 if ts is None else ts, hashlib.sha256(b"item-%d" % n).digest())


universe = st.sets(st.integers(0, 3000), max_size=400)


@settings(max_examples=60, deadline=None)
@given(universe, universe, st.sampled_from([(16, 32), (2, 1), (4, 3)]))
def test_reconciliation_learns_exactly_the_difference(a, b, params):
    buckets, id_limit = params
    ours, theirs = [item(n) for n in a], [item(n) for n in b]
    outcome, rounds, _ = reconcile_sets(ours, theirs, buckets=buckets, id_limit=id_limit)
    ids = lambda s: {i for _, i in s}  # noqa: E731
    assert outcome.need == ids(theirs) - ids(ours)
    assert outcome.have == ids(ours) - ids(theirs)
    # Transferring what was learnt leaves both sides with the same set.
    assert ids(ours) | outcome.need == ids(theirs) | outcome.have
    assert rounds >= 1


def test_rounds_grow_with_the_logarithm_and_bytes_with_the_difference():
    figures = []
    for n in (1_000, 10_000, 50_000):
        full = [item(k) for k in range(n)]
        missing = set(range(0, n, n // 10))  # ten items gone
        _, rounds, sent = reconcile_sets([x for k, x in enumerate(full) if k not in missing], full)
        figures.append((rounds, sent))
    assert all(r <= 4 for r, _ in figures)
    assert figures[-1][1] < 30 * 1024  # 50,000 items, 10 missing: kilobytes, not the 1.6 MB of ids


def test_identical_sets_finish_in_one_round():
    s = [item(k) for k in range(5000)]
    outcome, rounds, sent = reconcile_sets(s, list(s))
    assert rounds == 1 and not outcome.need and not outcome.have and sent < 2000


def test_an_hour_of_new_items_is_fetched_exactly():
    old = [item(k) for k in range(20_000)]
    new = [item(k, ts=10**9 + k) for k in range(20_000, 23_600)]
    outcome, rounds, _ = reconcile_sets(old, old + new)
    assert outcome.need == {i for _, i in new} and not outcome.have and rounds <= 4


def test_separating_bound_is_short_and_between():
    a, b = (5, bytes([1, 2, 3]) + bytes(29)), (5, bytes([1, 2, 9]) + bytes(29))
    bound = separating_bound(a, b)
    assert bound == (5, bytes([1, 2, 9]))
    assert separating_bound((4, a[1]), b) == (5, b"")
    items = ItemSet([a, b])
    assert items.index(bound) == 1


def test_fingerprint_is_order_free_and_counts():
    ids = [hashlib.sha256(bytes([k])).digest() for k in range(5)]
    assert fingerprint_of(ids) == fingerprint_of(reversed(ids))
    assert fingerprint_of(ids) != fingerprint_of(ids[:4])
    assert len(fingerprint_of([])) == 16


@pytest.mark.parametrize(
    "value",
    [
        [2, []],  # unknown version
        [1, [[None, 9, None]]],  # unknown mode
        [1, [[None, 1, b"short"]]],  # fingerprint not 16 bytes
        [1, [[[5, b""], 0, None]]],  # does not end at infinity
        [1, [[[5, b""], 0, None], [[5, b""], 0, None], [None, 0, None]]],  # bounds not ascending
        [1, [[None, 2, [b"\x02" * 32, b"\x01" * 32]]]],  # ids not ascending
        [1, [[None, 0, None], [None, 0, None]]],  # a range after infinity
        [1, [[None, 3, [[], b""]]]],  # an answer sent to a responder
    ],
)
def test_malformed_messages_are_refused(value):
    from node.reference import codec

    with pytest.raises(WireError) as err:
        Reconciler(ItemSet([item(1)])).reconcile(codec.encode(value))
    assert err.value.reason in ("malformed", "too_large")


def test_non_canonical_and_oversized_messages_are_refused():
    with pytest.raises(WireError):
        reconcile.decode(b"\x92\x01\x90\x00")  # trailing byte
    with pytest.raises(WireError) as err:
        reconcile.decode(b"\x00" * (reconcile.MAX_MESSAGE_BYTES + 1))
    assert err.value.reason == "too_large"


def test_items_must_be_well_formed():
    with pytest.raises(ValueError):
        ItemSet([(1, b"short")])
    with pytest.raises(ValueError):
        ItemSet([(-1, bytes(32))])


def test_fingerprint_vectors_of_protocol_md():
    ids = [hashlib.sha256(b"item-%d" % k).digest() for k in range(3)]
    assert fingerprint_of([]).hex() == "3605bba431e89ebdde867154a0af5b08"
    assert fingerprint_of(ids[:1]).hex() == "b122f3a67a939650b8a08791602d073d"
    assert fingerprint_of(ids).hex() == "ef28ac655fac78318b84a0e523c315d8"
