"""A vendor back from offline: token-filtered reconciliation against the unfiltered one, same run.

``python -m benchmarks.reconcile_filter [--intents N] [--away K] [--topics T]``

One responder store holds ``N`` live intents spread over ``T`` topics (``?topic0`` …); the vendor,
subscribed to one topic, holds all but the newest ``K`` of them. Both catch up through the real
``CatchUp`` sets and ``node.reconcile`` messages (no HTTP: the wire is the messages' bytes). Reported:
items the vendor fetches and bytes exchanged with the filter and without (the baseline), and the
responder's CPU time (``time.process_time``) to build one set: filtered cold (tokens decoded), filtered
warm (tokens remembered) and unfiltered. Ratios only; nothing here is gated on wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from app.root import build_core
from federation.catchup import CatchUp, token_filter
from federation.wire import GossipItem
from node import envelope, reconcile
from node.home import init_home
from node.identity import Identity
from node.intents import parse_intent
from node.keystore import load_identity
from node.store import Store

HOUR = 3_600_000


def _fill(store: Store, public_key: bytes, envelopes: list[bytes]) -> None:
    core = build_core(store, public_key, "person")
    for start in range(0, len(envelopes), 1000):
        core.pipeline.ingest([GossipItem(3, raw) for raw in envelopes[start : start + 1000]], None)


def _catch_up(ours: reconcile.ItemSet, theirs: CatchUp, filter_text: str) -> tuple[int, int, int]:
    """(ids needed, bytes exchanged, rounds)."""
    side = reconcile.Reconciler(ours)
    message = side.initiate()
    sent = 0
    while message is not None:
        answer = reconcile.Reconciler(theirs.items(filter_text)).reconcile(message)
        assert answer is not None
        sent += len(message) + len(answer)
        message = side.reconcile(answer)
    return len(side.outcome.need), sent, side.rounds


def _cpu(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reconcile_filter", description=__doc__)
    parser.add_argument("--intents", type=int, default=20_000)
    parser.add_argument("--away", type=int, default=2_000)
    parser.add_argument("--topics", type=int, default=10)
    args = parser.parse_args(argv)
    author = Identity.generate()
    now = int(time.time() * 1000)
    raws = [
        envelope.create(author, "intent", parse_intent(f"Need ?topic{i % args.topics} item{i}").body(),
                        created=now - args.intents + i, expires=now + HOUR).raw
        for i in range(args.intents)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        homes = [init_home(Path(tmp) / name, None, "person") for name in ("responder", "vendor")]
        keys = [load_identity(h.key_path, None).public_key for h in homes]
        with Store(homes[0].db_path) as theirs_store, Store(homes[1].db_path) as ours_store:
            _fill(theirs_store, keys[0], raws)
            _fill(ours_store, keys[1], raws[: args.intents - args.away])
            wanted = token_filter(["topic0"])
            results = {}
            for label, filter_text in (("filtered", wanted), ("unfiltered", "")):
                ours = CatchUp(ours_store).items(filter_text)
                results[label] = _catch_up(ours, CatchUp(theirs_store), filter_text)
            cold = _cpu(lambda: CatchUp(theirs_store).items(wanted))
            warm_set = CatchUp(theirs_store)
            warm_set.items(wanted)
            warm = _cpu(lambda: warm_set.items(wanted))
            plain = _cpu(lambda: CatchUp(theirs_store).items(""))
    (fn, fb, fr), (un, ub, ur) = results["filtered"], results["unfiltered"]
    print(f"{args.intents} live intents over {args.topics} topics; the vendor (one topic) missed the newest {args.away}")
    print(f"  filtered   : {fn:6d} items fetched, {fb:9d} bytes, {fr} rounds")
    print(f"  unfiltered : {un:6d} items fetched, {ub:9d} bytes, {ur} rounds (baseline)")
    print(f"  items ratio {un / max(fn, 1):.1f}x fewer, bytes ratio {ub / max(fb, 1):.1f}x fewer")
    print(f"  responder CPU per set: filtered cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms, "
          f"unfiltered {plain * 1000:.0f} ms (warm/unfiltered {warm / plain:.2f}x, cold/unfiltered {cold / plain:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
