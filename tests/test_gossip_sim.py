"""The gossip simulator on small networks of real nodes (stores, pipelines, outboxes).

What a user of the federation relies on and these runs check: every vendor whose subscriptions match
an intent gets a lead for it (and no other vendor does), a node stores each envelope once however many
copies reach it, a push never goes further than the origin's ttl allows, and the pulls every node
makes bring what the pushes missed.
"""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.gossip_sim import MAX_HOPS, GossipSim, SimConfig, build_graph, distances, percentile
from node.leads import Leads

SMALL = SimConfig(nodes=8, vendors=3, intents=16, min_degree=2, max_degree=3, pull_interval_ms=1_000, seed=7)


@pytest.fixture
def small(tmp_path):
    with GossipSim(SMALL, tmp_path) as sim:
        sim.run()
        yield sim, sim.results()


def test_every_matching_vendor_gets_a_lead_by_push(small):
    sim, r = small
    assert r["graph"]["diameter"] < MAX_HOPS  # every node is within the push's reach
    assert r["vendor_pairs"] > 0
    assert r["push"]["covered"] == r["vendor_pairs"] and r["push"]["missed"] == {}
    assert r["pull"]["coverage"] == 1.0
    assert r["unexpected_leads"] == 0
    # The same, read straight from the vendors' stores: a lead for exactly the intents that match.
    for node in sim.nodes:
        if node.role == "vendor":
            leads = {lead.intent_id for lead in Leads(node.store, clock=sim.clock).list(status="all")}
            assert leads == {i.id for i in sim.intents if node.index in i.vendors}
    assert r["push"]["time_to_all_matching_vendors_ms"]["p99"] > 0
    assert r["refused"] == {}


def test_duplicates_are_offered_but_stored_once(small):
    sim, r = small
    copies = sim.stats.copies["push"] + sim.stats.copies["pull"]
    assert sum(copies.values()) > len(copies)  # copies did arrive more than once
    assert all(n == 1 for n in sim.stats.accepted.values())  # … and were accepted once
    assert r["stored_more_than_once"] == 0
    held = sim.stored()
    everything = {i.id for i in sim.intents}
    for node in sim.nodes:
        assert set(held[node.index]) == everything  # after the pulls, every node holds every intent
        assert set(held[node.index].values()) == {1}
    # A neighbour passes an envelope on at most once: no node is pushed more copies than it has peers.
    for (node, _), n in sim.stats.copies["push"].items():
        assert n <= len(sim.adj[node])
    assert r["push"]["duplicates_per_node_per_intent"]["max"] >= 1


def test_push_goes_at_most_ttl_hops_and_pulls_repair(tmp_path):
    # A sparse ring-like graph wider than a push's reach.
    config = SimConfig(nodes=14, vendors=2, intents=6, min_degree=1, max_degree=2, pull_interval_ms=1_000, seed=3)
    with GossipSim(config, tmp_path) as sim:
        sim.run()
        r = sim.results()
        assert r["graph"]["diameter"] > MAX_HOPS
        for intent in sim.intents:
            dist = distances(sim.adj, intent.author)
            for node in range(config.nodes):
                first = sim.stats.first.get((node, intent.id))
                if first is not None and first[2] == "push":
                    assert dist[node] <= first[1] <= MAX_HOPS  # never fewer hops than the shortest path
        assert r["push"]["node_reach"] < 1.0
        assert r["pull"]["node_reach"] == 1.0 and r["pull"]["coverage"] == 1.0
        assert r["stored_more_than_once"] == 0
        assert set(Counter(n for h in sim.stored().values() for n in h.values())) == {1}


def test_graph_is_connected_within_degree_bounds():
    import random

    adj = build_graph(100, 4, 6, random.Random(1))
    degrees = [len(a) for a in adj]
    assert min(degrees) >= 4 and max(degrees) <= 6
    assert min(distances(adj, 0)) >= 0
    assert all(u in adj[v] for u in range(100) for v in adj[u])


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([7], 99) == 7


def test_bad_configuration_is_refused(tmp_path):
    with pytest.raises(ValueError):
        GossipSim(SimConfig(nodes=5, vendors=5), tmp_path)
    with pytest.raises(ValueError):
        GossipSim(SimConfig(nodes=5, vendors=1, min_degree=3, max_degree=2), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing was created


@pytest.fixture(scope="module")
def model_run():
    from benchmarks import gossip_model

    return gossip_model.run(gossip_model.ModelConfig(nodes=60, intents=40))


def test_the_gossip_model_quick_run_compares_both_protocols_on_one_world(model_run):
    from benchmarks import gossip_model

    r = model_run
    plum, flood = r["plumtree"], r["flooding"]
    assert plum["live_vendor_pairs"] == flood["live_vendor_pairs"] > 0  # the same world
    assert plum["coverage_within_5s"] == 1.0
    assert plum["held_at_end"] > 0.97 and flood["held_at_end"] > 0.97  # NAT nodes catch up each minute
    assert gossip_model.gate(r) == [] and r["copy_ratio"] <= 0.5
    assert plum["announcements_per_node_per_intent"] > 0 and flood["announcements_per_node_per_intent"] == 0
    k = r["catch_up_1h"]["all"]
    assert k["transferred"] == k["missing"] and k["pull_items_by_cursor"] == 5 * k["missing"]
    assert k["rounds_each_other_peer"] == 1  # a peer with nothing new costs one round


def test_the_gossip_model_accounts_for_every_copy_by_cause(model_run):
    from benchmarks import gossip_model

    r = model_run
    for name in ("flooding", "plumtree"):
        p = r[name]
        b = p["breakdown"]
        # Every copy is either the first one a node kept or a duplicate, each named by its cause.
        first, dups = sum(b["first_copy"].values()), sum(b["duplicates"].values())
        assert abs(first - p["held_at_end"]) < 0.01
        assert abs(first + dups - p["copies_per_node_per_intent"]["all"]) < 0.01
        assert b["hops_to_last_vendor"]["n"] == p["time_to_every_live_matching_vendor_ms"]["n"]
        slowest = b["slowest_5pct"][-1]
        assert slowest["ms"] == p["time_to_every_live_matching_vendor_ms"]["max"]
        assert len(slowest["steps"]) == slowest["hops"] >= 1
    plum = r["plumtree"]["breakdown"]
    assert set(plum["first_copy"]) <= {"eager", "graft", "own", "dup-peer", "fetch", "offer"}
    assert plum["first_copy"]["fetch"] > 0  # nodes behind NAT are reached only by catch-up
    assert set(r["flooding"]["breakdown"]["first_copy"]) <= {"push", "pull"}
    assert gossip_model.gate(r) == []
    assert gossip_model.gate(r, max_copies=r["plumtree"]["copies_per_node_per_intent"]["all"] - 0.01) != []
