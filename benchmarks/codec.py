"""Canonical encoding: native against the pure-Python reference on typical envelopes."""

from __future__ import annotations

from benchmarks.data import Corpus
from benchmarks.harness import Bench, Suite


def run(suite: Suite, native, reference, corpus: Corpus) -> None:
    sample = corpus.envelopes[:64]
    sample_values = corpus.values[: len(sample)]
    k = len(sample)
    if any(native.decode(raw) != reference.decode(raw) for raw in sample):
        raise SystemExit("benchmark corpus: native and reference decode differently")
    if any(native.encode(value) != raw for value, raw in zip(sample_values, sample)):
        raise SystemExit("benchmark corpus: native encode does not give the envelopes back")
    avg = sum(map(len, sample)) // k
    benches: list[Bench] = []

    for op, args, label in (
        ("decode", sample, f"decode (envelope, ~{avg} B)"),
        ("encode", sample_values, "encode (envelope map)"),
        ("decode_envelope", sample, "decode_envelope (+ field checks, id)"),
    ):
        for name, backend in (("reference", reference), ("native", native)):
            fn = getattr(backend, op)

            def run_op(fn=fn, args=args):
                for arg in args:
                    fn(arg)

            benches.append(Bench(f"codec.{name}.{op}", f"{name} {label}", run_op, ops=k,
                                 baseline=None if name == "reference" else f"codec.reference.{op}"))  # fmt: skip

    try:
        import msgpack
    except ImportError:
        msgpack = None
    if msgpack is not None:

        def run_msgpack():
            for raw in sample:
                msgpack.unpackb(raw)

        benches.append(Bench("codec.msgpack.unpackb", "msgpack-python unpackb (no checks; for scale)", run_msgpack,
                             ops=k, baseline="codec.reference.decode"))  # fmt: skip
    suite.run_group("codec", benches)
