"""Discovery inputs (federation/discovery.py): bootstrap entries the operator wrote, and peer-exchange
answers from a peer, which are bounded and filtered before anything is dialled."""

from __future__ import annotations

import msgpack
import pytest

from federation.discovery import (
    MAX_EXCHANGE,
    PER_SOURCE,
    Candidate,
    CandidatePool,
    bootstrap,
    decode_exchange,
    encode_exchange,
)
from federation.peerexchange import Discovery, Found
from node.errors import WireError
from node.nodeid import encode_node_id

A, B, C, ME = (encode_node_id(bytes([k]) * 32) for k in (1, 2, 3, 4))


def test_bootstrap_reads_urls_and_pinned_ids():
    got = bootstrap({"bootstrap": ["https://relay.example/", {"url": "http://pi.local:8080", "id": A}]})
    assert [(c.url, c.node_id, c.source) for c in got] == [
        ("https://relay.example", None, "bootstrap"),
        ("http://pi.local:8080", A, "bootstrap"),
    ]
    assert bootstrap({}) == []
    for bad in (["ftp://x"], [{"url": "http://x", "id": "nope"}], [42]):
        with pytest.raises(ValueError):
            bootstrap({"bootstrap": bad})


def test_exchange_keeps_good_entries_and_drops_the_rest():
    body = encode_exchange([(A, "https://a.example", "vendor"), (B, "https://b.example", "person")])
    raw = msgpack.unpackb(body)
    raw["peers"] += [[ME, "https://me", "person"], [C, "javascript:x", "person"], ["x", "https://x", "person"],
                     [C, "https://c", "king"], [B, "https://dup", "person"], "junk",
                     [C, "http://[::1", "person"], [C, "http://c.example:99999", "person"]]  # fmt: skip
    got = decode_exchange(msgpack.packb(raw), sender=C, own_id=ME, known=[])
    assert [(c.node_id, c.url, c.role, c.source) for c in got] == [
        (A, "https://a.example", "vendor", f"exchange:{C}"),
        (B, "https://b.example", "person", f"exchange:{C}"),
    ]
    assert decode_exchange(body, sender=C, own_id=ME, known=[A]) == got[1:]


def test_exchange_is_bounded_and_malformed_bodies_are_refused():
    many = [(encode_node_id(k.to_bytes(32, "big")), f"https://n{k}.example", "person") for k in range(1, 200)]
    body = msgpack.packb({"peers": [list(p) for p in many]})
    assert len(decode_exchange(body, sender=C, own_id=ME)) == MAX_EXCHANGE
    for bad in (b"\xc1", msgpack.packb([1]), msgpack.packb({"peers": 3}), b"\x00" * 70_000):
        with pytest.raises(WireError):
            decode_exchange(bad, sender=C, own_id=ME)


def test_the_candidate_pool_is_bounded():
    pool = CandidatePool(limit=3)
    pool.add(bootstrap({"bootstrap": [f"https://n{k}.example" for k in range(5)]}))
    assert [c.url for c in pool.take()] == ["https://n2.example", "https://n3.example", "https://n4.example"]
    assert pool.take() == []


def test_a_source_cannot_evict_or_redirect_a_node_another_source_named():
    honest = Candidate(A, "https://a.example", "person", "mdns")
    pool = CandidatePool()
    pool.add([honest])
    pool.add([Candidate(B if k == 0 else encode_node_id(bytes([9, k]) * 16), f"https://j{k}.example", "person",
                        "exchange:m") for k in range(PER_SOURCE)])  # fmt: skip
    assert pool.add([Candidate(A, "https://evil.example", "person", "exchange:m")]) == 0  # its quota is full
    assert pool.add([Candidate(A, "https://evil.example", "person", "exchange:n")]) == 0  # room, but A is named
    assert [c for c in pool.pending() if c.node_id == A] == [honest]


def test_a_refusal_keeps_a_node_away_only_at_the_url_that_was_refused():
    discovery = Discovery(None, None, None, own_id=ME, add=None, allow_private=True, max_peers=8, clock=lambda: 1_000)
    discovery.found[A] = Found(A, "https://evil.example", "person", "exchange:m", "refused", "another node answers there", 900)
    assert discovery.offer([Candidate(A, "https://evil.example", "person", "exchange:m")]) == 0
    assert discovery.offer([Candidate(A, "https://a.example", "person", "mdns")]) == 1
