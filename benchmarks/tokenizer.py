"""The intent tokenizer: native parse_intent against the pure-Python reference on realistic texts."""

from __future__ import annotations

import random

from benchmarks.harness import Bench, Suite

BASELINE = "tokenizer.reference.parse_intent"

# Pieces people write: what they want, where, when, how much, for whom, and some plain words.
_WANTS = ["?flight", "?hotel", "?taxi", "?rentalcar", "?pizza", "?plumber", "?bike-repair", "?Zug", "?café",
          "?ПОЕЗД", "?catering", "?shoes", "?laptop", "?dentist", "?旅館"]
_TAGS = ["#work", "#family", "#urgent", "#eco", "#日本", "#weekend", "#vegan"]
_HANDLES = ["@acme-air", "@zephyr.rentals", "@bella_catering", "@local-bikes"]
_CONSTRAINTS = ["SFO->JFK", "LHR->CDG", "max:400USD", "max:12.50EUR", "budget:150..300EUR", "min:5000JPY",
                "before:2026-12-20", "after:2026-06-01", "on:2026-07-14..2026-07-20", "near:9q8yy",
                "near:u09tvw", "qty:2", "nights:3..5", "guests:12", "seats:2", "size:42", "from:SFO",
                "color:blue", "note:window-seat"]
_WORDS = ["please", "need", "a", "for", "the", "cheap", "tomorrow", "morning", "quiet", "(no", "stopovers),",
          "window", "seat!", "with", "breakfast.", "two", "kids", "gluten-free", "délicieux", "быстро"]  # fmt: skip


def corpus(n: int = 64, seed: int = 5) -> list[str]:
    """n realistic intent texts (20 to ~160 characters), each valid."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        parts = [rng.choice(_WANTS)]
        parts += rng.sample(_CONSTRAINTS, rng.randrange(0, 4))
        parts += rng.sample(_TAGS, rng.randrange(0, 2)) + rng.sample(_HANDLES, rng.randrange(0, 2))
        parts += rng.sample(_WORDS, rng.randrange(2, 10))
        rng.shuffle(parts)
        text = " ".join(parts)
        keys = [p.split(":")[0] for p in parts if ":" in p] + [k for p in parts if "->" in p for k in ("from", "to")]
        if len(keys) == len(set(keys)) and any(p.startswith("?") for p in parts):
            out.append(text)
    return out


def run(suite: Suite, native, reference) -> None:
    texts = corpus()
    for text in texts:
        if native.parse_intent(text) != reference.parse_intent(text):
            raise SystemExit(f"benchmark corpus: native and reference tokenize {text!r} differently")
    k = len(texts)
    avg = sum(map(len, texts)) // k
    benches = []
    for name, backend in (("reference", reference), ("native", native)):
        parse = backend.parse_intent

        def run_parse(parse=parse):
            for text in texts:
                parse(text)

        benches.append(Bench(f"tokenizer.{name}.parse_intent", f"{name} parse_intent (~{avg} chars)", run_parse,
                             ops=k, baseline=None if name == "reference" else BASELINE))  # fmt: skip
    suite.run_group("tokenizer", benches)
