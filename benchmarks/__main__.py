"""python -m benchmarks [--quick] [--gate] [--scale N] [--json PATH] [--only verify|codec|tokenizer|matcher|grants|page|ingest|gossip|fleet]

``--only fleet`` (benchmarks/fleet.py: PostgreSQL listeners vs one SQLite listener) runs only when
asked: it needs PostgreSQL and idle cores, takes a minute or two, and is reported, never gated."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks import codec, gossip_model, grants, ingest, matcher, page, tokenizer, verify
from benchmarks.data import make_corpus
from benchmarks.harness import Gate, Suite, evaluate_gates, print_load, print_table, write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"

# Ratios the native core must reach, measured in the same run (per-operation time of the baseline
# divided by the native one).
GATES = [
    Gate("batch verify >= 4x pyca", "verify.native.batch256", "verify.pyca.single", 4.0),
    # Target 2.5x. A signer seen before (its key's fixed-base table built, as pyca's keys are loaded):
    # 2.9x on a 2 GHz Zen 1; a first-time signer (the plain check) 1.8x there, 2.3x on the CPU before.
    Gate("single verify >= 2x pyca (known signers)", "verify.native.verify_one", "verify.pyca.single", 2.0),
    Gate("single verify >= 1.5x pyca (first-time signers)", "verify.native.verify_one_cold", "verify.pyca.single", 1.5),
    # Target 1.6x one thread on two cores (1024 per call; the table reports it). The gate compares
    # the threaded call with the same work split by hand over two one-thread calls side by side, in
    # the same rounds: 1.8x one thread with both cores free (so 0.8 of it is stricter than the 1.3x
    # one thread it replaces), and as slow as the threaded call when the hypervisor holds a core
    # (1.24x one thread in a CI run at load 1.2, steal 2.3 %, which failed that gate).
    # Skipped (reason printed) when the load average is above the core count: the ratio needs idle cores.
    Gate("threaded batch verify >= 0.8x the same work on two one-thread calls side by side (target 1.6x one thread)",
         verify.THREADS, verify.SIDE_BY_SIDE, 0.8, needs_idle_cores=True),
    Gate("decode >= 8x reference", "codec.native.decode", "codec.reference.decode", 8.0),
    Gate("tokenizer >= 5x reference", "tokenizer.native.parse_intent", "tokenizer.reference.parse_intent", 5.0),
    # Target 15x with 100k subscriptions; the gate keeps a margin for noisy CI machines.
    Gate("matcher >= 10x reference", "matcher.native.match_envelopes", matcher.BASELINE, 10.0),
    # Was an absolute wall-time limit (failed 2 of 8 runs with one core busy). Now a same-run ratio: the
    # grant check's CPU time (time.process_time_ns, p50) vs one SQLite point query's, measured
    # interleaved; the p99 wall time stays a reported figure.
    Gate("grant check CPU <= 10x one SQLite point query", "grants.check", "grants.point_query", 1 / 10),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer envelopes and shorter rounds (CI)")
    parser.add_argument("--gate", action="store_true", help="exit 1 when a speed ratio is under its gate")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write results ({DEFAULT_JSON})")
    parser.add_argument("--scale", type=int, default=1_000_000,
                        help="subscriptions of the matcher's at-scale run (full runs only; 0: skip it)")  # fmt: skip
    parser.add_argument("--only", choices=("verify", "codec", "tokenizer", "matcher", "grants", "page", "ingest", "gossip", "fleet"), help="run one group")
    args = parser.parse_args(argv)

    from node.backends import get_backend

    native, reference = get_backend("native"), get_backend("reference")
    try:
        native.module  # noqa: B018 - import now, to fail with a clear message
    except ImportError as exc:
        print(f"the native core is not built ({exc}); run `make setup` first", file=sys.stderr)
        return 2

    if args.only == "fleet":
        from benchmarks import fleet

        return fleet.main(["--quick"] if args.quick else [])
    started = time.perf_counter()
    # The threads ratio needs idle cores: with the machine busy it says little, so the load is printed.
    before = print_load("before")
    load = before["load"]
    n = 256 if args.quick else 1024
    meta: dict = {"envelopes": n, "load_before": load}
    suite = Suite(quick=args.quick)
    if args.only in (None, "verify", "codec"):
        print(f"building {n} signed envelopes from 64 authors ...", file=sys.stderr)
        corpus = make_corpus(native, n, authors=64)
        meta["authors"] = corpus.authors
    if args.only in (None, "verify"):
        verify.run(suite, native, reference, corpus)
    if args.only in (None, "codec"):
        codec.run(suite, native, reference, corpus)
    if args.only in (None, "tokenizer"):
        tokenizer.run(suite, native, reference)
    if args.only in (None, "matcher"):
        print("building 100,000 subscriptions and 256 signed intents ...", file=sys.stderr)
        meta.update(matcher.run(suite, native, reference))
        if not args.quick and args.scale:
            meta.update(matcher.run_scale(suite, native, reference, subscriptions=args.scale))
    if args.only in (None, "grants"):
        print("building a store of 10,000 signed grants ...", file=sys.stderr)
        meta.update(grants.run(suite, native))
    if args.only in (None, "page"):
        print("starting a person node on loopback for the page's first load ...", file=sys.stderr)
        meta.update(page.run(suite))
    if args.only in (None, "ingest"):
        # Intents pushed over real HTTP into a vendor's node, case by case, each as a ratio to native
        # verify-only measured around it (benchmarks/ingest.py; its gates are ratios too).
        print("pushing signed intents over HTTP into a vendor node, case by case ...", file=sys.stderr)
        rows, baseline = ingest.run(quick=args.quick)
        ingest.print_table(rows, baseline)
        ingest.to_suite(suite, rows, baseline)
        meta["ingest"] = {"rows": rows, **baseline}
    gates = evaluate_gates(suite, [g for g in GATES + ingest.GATES if args.only is None or g.result.startswith(args.only)], load=before)
    print_table(suite, gates)
    gossip_failures: list[str] = []
    if args.only in (None, "gossip"):
        # Plumtree + reconciliation against flooding on the same simulated world (100 nodes quick):
        # a ratio of payload copies, not a time, so a loaded machine cannot fail it.
        print("modelling gossip: plumtree vs flooding on one world ...", file=sys.stderr)
        figures = gossip_model.run(gossip_model.model_config(args.quick))
        gossip_failures = gossip_model.gate(figures)
        gossip_model.print_report(figures)
        meta["gossip"] = {k: figures[k] for k in ("flooding", "plumtree", "copy_ratio", "world")}
    elapsed = time.perf_counter() - started
    after = print_load("after", since=before)
    write_json(args.json, suite, gates, {**meta, "load_after": after["load"], "stolen": after.get("stolen"),
                                         "cpus": os.cpu_count(), "seconds": round(elapsed, 2)})  # fmt: skip
    print(f"results written to {args.json} ({elapsed:.1f} s)", file=sys.stderr)
    if args.gate:
        failed = [g.describe() for g in gates if not g.passed] + gossip_failures
        for gate in failed:
            print(f"GATE FAILED: {gate}", file=sys.stderr)
        if failed:
            return 1
        print("all gates passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
