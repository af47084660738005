"""The data path's split ingest: ``Pipeline.prepare`` (the native pass, no store) on a worker thread
while the store's thread commits, and a vendor's live index that changes between the two."""

from __future__ import annotations

import threading

from app.root import build_core
from federation import wire
from node import envelope
from node.identity import Identity
from node.intents import parse_intent
from node.leads import Leads
from node.reasons import Reason
from node.store import Store
from node.subscriptions import LiveIndex, Subscriptions

NOW = 1_750_000_000_000
HOUR = 3_600_000
ALICE = Identity.from_seed(b"\xa1" * 32)
VENDOR = Identity.from_seed(b"\x7e" * 32)


def intent(text: str, n: int = 0) -> wire.GossipItem:
    body = parse_intent(f"{text} #n{n}").body()
    return wire.GossipItem(4, envelope.create(ALICE, "intent", body, created=NOW - 1000 - n, expires=NOW + HOUR).raw)


def vendor(tmp_path, *texts: str):
    store = Store(tmp_path / "vendor.db", clock=lambda: NOW)
    live = LiveIndex(store)
    subscriptions = Subscriptions(store, clock=lambda: NOW, live=live)
    for text in texts:
        subscriptions.add(text)
    core = build_core(store, VENDOR.public_key, "vendor", None, live, lambda: NOW)
    return store, live, subscriptions, core.pipeline


def leads(store) -> dict[str, list[int]]:
    return {lead.intent_id: lead.subscription_ids for lead in Leads(store, clock=lambda: NOW).list()}


def test_an_intent_prepared_before_a_subscribe_still_matches_it_at_commit(tmp_path):
    store, live, subscriptions, pipeline = vendor(tmp_path, "?flight")
    live.sync()
    item = intent("?hotel nights:2")
    # Another process (the CLI) subscribes: the store has it, the index not yet (stale until a sync).
    hotel = Subscriptions(store, clock=lambda: NOW).add("?hotel")
    live.invalidate()
    assert live.current() is None
    prepared = pipeline.prepare([item])
    assert not prepared.matched  # no native match against an index known stale
    assert list(pipeline.commit(prepared, None).reasons) == [Reason.OK]
    assert leads(store) == {envelope.decode(item.envelope).id.hex(): [hotel.id]}
    store.close()


def test_batches_prepared_on_other_threads_while_the_store_commits_match_one_by_one_ingest(tmp_path):
    store, live, _, pipeline = vendor(tmp_path, "?flight", "?hotel")
    live.sync()
    batches = [[intent("?flight SFO->JFK" if i % 2 else "?bike", 10 * b + i) for i in range(10)] for b in range(6)]
    batches.append(batches[0][:5] + [intent("?hotel", 99)])  # copies of committed items, one new
    prepared: list = [None] * len(batches)

    def prepare(k: int) -> None:
        prepared[k] = pipeline.prepare(batches[k])

    threads = [threading.Thread(target=prepare, args=(k,)) for k in range(len(batches) - 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers = [list(pipeline.commit(p, None).reasons) for p in prepared[:-1]]
    answers.append(list(pipeline.ingest(batches[-1], None).reasons))  # after the commits: copies known
    assert answers[:-1] == [[Reason.OK] * 10] * 6
    assert answers[-1] == [Reason.DUPLICATE] * 5 + [Reason.OK]
    assert store.count("envelopes") == 61
    assert sorted(leads(store).values()) == [[1]] * 30 + [[2]]
    store.close()
