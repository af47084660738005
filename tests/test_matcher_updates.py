"""The subscription matcher changed in place: ``add`` and ``remove`` against a rebuild.

Native and reference indexes receive the same interleaved adds and removes (random and hostile
subscriptions, repeated ids, ids that are not there); after every step both must give the same bytes as
an index built from scratch from what is left, and, now and then, as every subscription checked alone.
"""

from __future__ import annotations

import random
import threading

import pytest

from node.errors import EnvelopeError
from tests.test_matcher import body, brute_force, enc, random_items, random_subscription, split, sub


def hostile_subscription(rng: random.Random, sid: int) -> tuple:
    """Edge cases of filing: an empty near prefix, repeated names, non-ASCII, equality on odd values."""
    sid, tokens, tags, handles, equals, near, bounds = random_subscription(rng, sid)
    choice = rng.randrange(5)
    if choice == 0:
        near = rng.choice(["", "é", "dr5ru9", "9"])
    elif choice == 1:
        tokens = tokens * 2
        tags = tags * 3
    elif choice == 2:
        equals = [*equals, ("near", {"geohash": "dr5"})]
    elif choice == 3:
        tokens = [rng.choice(["café", "x" * 40, "flight"])]
    return (sid, tokens, tags, handles, equals, near, bounds)


def results(index, bodies, envelopes):
    return index.match_bodies(bodies), index.match_envelopes(envelopes)


@pytest.mark.parametrize("seed", range(3))
def test_updates_equal_a_rebuild(native, reference, seed):
    rng = random.Random(1000 + seed)
    bodies, envelopes = random_items(rng, 150)
    live = [native.MatchIndex([]), reference.MatchIndex([])]
    present: list[tuple] = []
    for step in range(25):
        make = hostile_subscription if rng.random() < 0.3 else random_subscription
        batch = [make(rng, rng.randrange(-3, 120)) for _ in range(rng.choice([0, 1, 5, 30]))]
        for index in live:
            index.add(batch)
        present += batch
        gone = [rng.randrange(-3, 120) for _ in range(rng.choice([0, 1, 4]))] + gone_twice(rng, present)
        expected = sum(1 for s in present if s[0] in gone)
        assert [index.remove(gone) for index in live] == [expected, expected]
        present = [s for s in present if s[0] not in gone]
        assert [len(index) for index in live] == [len(present)] * 2
        want = results(native.MatchIndex(present), bodies, envelopes)
        assert results(live[0], bodies, envelopes) == want, step
        assert results(live[1], bodies, envelopes) == want, step
        assert results(reference.MatchIndex(present), bodies, envelopes) == want, step
        if step % 8 == 7 and present:
            assert split(want[0]) == brute_force(native, present, bodies, "match_bodies"), step
    assert sum(1 for _, ids in split(live[0].match_bodies(bodies)) if ids) > 0


def gone_twice(rng: random.Random, present: list[tuple]) -> list[int]:
    """Ids that are there, one of them given twice."""
    if not present:
        return []
    ids = [s[0] for s in rng.sample(present, min(3, len(present)))]
    return ids + ids[:1]


def test_add_is_all_or_nothing(backend):
    index = backend.MatchIndex([sub(1, ["flight"])])
    items = [enc(body("?flight ?hotel"))]
    before = index.match_bodies(items)
    for bad, error in [
        ([sub(2, ["hotel"]), sub(3, [])], ValueError),
        ([sub(2, ["hotel"]), sub(3, ["a"], equals=[("to", 1.5)])], EnvelopeError),
        ([sub(2, ["hotel"]), (3, "abc", [], [], [], None, [])], TypeError),
        (None, TypeError),
    ]:
        with pytest.raises(error):
            index.add(bad)
        assert len(index) == 1
        assert index.match_bodies(items) == before
    index.add([sub(2, ["hotel"]), sub(1, ["hotel"])])
    assert split(index.match_bodies(items)) == [(0, [1, 2])]
    assert index.remove([1]) == 2
    assert split(index.match_bodies(items)) == [(0, [2])]


def test_remove_arguments(backend):
    index = backend.MatchIndex([sub(5, ["flight"]), sub(-2**63, ["flight"]), sub(2**63 - 1, ["taxi"])])
    assert index.remove([]) == 0
    assert index.remove(iter([7, 5, 5])) == 1
    for bad, error in [(["5"], TypeError), ([True], TypeError), ([None], TypeError), ([2**64], OverflowError),
                       (5, TypeError)]:  # fmt: skip
        with pytest.raises(error):
            index.remove(bad)
    assert len(index) == 2
    assert index.remove((-(2**63), 2**63 - 1)) == 2
    assert len(index) == 0
    assert split(index.match_bodies([enc(body("?flight ?taxi"))])) == [(0, [])]


def test_native_matches_while_another_thread_updates(native):
    """Matching keeps running (GIL released, a read lock per item) while subscriptions come and go,
    and every result is one the index could give: the fixed subscriptions always, churned ones or not."""
    fixed = [sub(i, ["flight"], near="dr5"[: i % 4] or None) for i in range(500)]
    index = native.MatchIndex(fixed)
    batch = [enc(body("?flight near:dr5ru"))] * 200
    always = split(native.MatchIndex(fixed).match_bodies(batch[:1]))[0][1]
    churn = set(range(10_000, 10_050))
    seen: list[list[int]] = []
    done = threading.Event()

    def match() -> None:
        while not done.is_set():
            seen.extend(ids for _, ids in split(index.match_bodies(batch)))

    worker = threading.Thread(target=match)
    worker.start()
    try:
        for _ in range(200):
            index.add([sub(i, ["flight"]) for i in churn])
            assert index.remove(churn) == len(churn)
    finally:
        done.set()
        worker.join()
    assert seen
    for ids in seen:
        assert set(always) <= set(ids) <= set(always) | churn
    assert split(index.match_bodies(batch[:1]))[0][1] == always
