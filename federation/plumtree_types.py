"""Plumtree's vocabulary (federation/plumtree.py): the actions the machine answers and the timers it
runs by. Apart so the machine's module holds only its state and events."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

Peer = Hashable
ID_BYTES = 32
MAX_ANNOUNCE = 1000  # (id, hops) pairs in one IHAVE, ids in one GRAFT
MAX_HOPS = 255  # hops are counted up to here and then stay (they only order paths)


@dataclass(frozen=True, slots=True)
class Push:
    peer: Peer
    id: bytes
    hops: int


@dataclass(frozen=True, slots=True)
class Announce:
    peer: Peer
    items: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True, slots=True)
class Graft:
    peer: Peer
    ids: tuple[bytes, ...]
    eager: bool = True  # also: push to us from now on (else only these payloads)


@dataclass(frozen=True, slots=True)
class Prune:
    peer: Peer


@dataclass(frozen=True, slots=True)
class Broken:
    peer: Peer
    reason: str  # "unanswered_ihave" or "ignored_prune"
    id: bytes | None = None  # the id announced and never delivered ("unanswered_ihave")


Action = Push | Announce | Graft | Prune | Broken


@dataclass(frozen=True, slots=True)
class Timers:
    """The protocol's timers (ms) and bounds; PROTOCOL.md section 13 gives the defaults' reasons."""

    announce_delay_ms: int = 20  # IHAVEs wait this long to be batched per peer
    graft_timeout_ms: int = 300  # an announced id not received this long after its first IHAVE: GRAFT
    # Announced by two peers and still not here: our tree path is cut or slow for this id. It is
    # fetched from the first announcer this long after the second IHAVE by a GRAFT that leaves the
    # link lazy (one late payload is no reason to reshape the tree: eager GRAFTs this early made
    # cycles); the eager GRAFT still follows at graft_timeout if the fetch brought nothing.
    early_fetch_announcers: int = 2  # announcers that start it (0: off)
    early_fetch_ms: int = 100
    # A fetch that brought the payload first, with no other copy by graft_timeout: the tree does not
    # reach us by that side. After this many in a row through one peer its link is grafted eager (an
    # empty GRAFT), as graft_timeout would have done without the fetch (0: never).
    fetch_graft_after: int = 3
    graft_retry_ms: int = 200  # then the next announcer, this long after each GRAFT
    optimise_ms: int = 0  # an eager copy this much later than an IHAVE of it swaps the links (0: off)
    optimise_hops: int = 0  # an IHAVE this many hops shorter than the eager copy swaps them (0: off)
    recent: int = 65_536  # ids remembered (hops, sender, time, peers grafted) for optimisation and timers
    max_missing: int = 65_536  # announced ids awaited at once, in all
    max_missing_per_peer: int = 4096  # of those, first announced by one peer
    announcers_per_id: int = 8  # announcers remembered per awaited id
    graft_eager_after: int = 1  # GRAFTs in a row to one peer before its link turns eager
    prune_after: int = 6  # duplicates in a row (no new payload between) from a peer before pruning it
    fanout_hops: int = 0  # a payload this few hops from its author is pushed to lazy peers too (0: off)
    promise_ms: int = 3000  # after the last announcer was asked, how long its answer may take
    prune_grace_ms: int = 2000  # duplicates from a pruned peer this soon after the PRUNE were in flight
    prune_unproven_after: int = 0  # the same for an eager peer that never sent us a new payload first (0: off)
