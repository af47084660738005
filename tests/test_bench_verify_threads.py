"""The threaded-verify gate's baseline (benchmarks/verify.py): the same work split by hand over two
one-thread calls side by side. It must answer what one call answers, or the gate compares unequal
work; and the gate must fail a threaded call that does not use the second core."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from benchmarks import verify
from benchmarks.__main__ import GATES
from benchmarks.data import NOW_MS, make_intents
from benchmarks.harness import Result, Suite, evaluate_gates
from node.backends import get_backend

native = get_backend("native")


def _forged(raws: list[bytes], at: set[int]) -> list[bytes]:
    """``raws`` with a byte of the signature flipped at the indexes in ``at`` (the map ends with the
    signature, then ``v``: the envelope still decodes; only the signature fails)."""
    return [raw[:-10] + bytes([raw[-10] ^ 1]) + raw[-9:] if i in at else raw for i, raw in enumerate(raws)]


def test_side_by_side_halves_answer_what_one_call_answers_with_forged_items_on_both_sides():
    raws = _forged(make_intents(native, 96, authors=8), {3, 47, 48, 95})
    with ThreadPoolExecutor(max_workers=1) as helper:
        side_by_side = verify.side_by_side_batch(native, raws, helper)
        codes = side_by_side()
        assert codes == side_by_side()  # the same answer every round
    expected, _ = native.Verifier(threads=1).verify_batch(raws, NOW_MS)
    assert codes == expected
    assert [i for i, c in enumerate(codes) if c] == [3, 47, 48, 95]


def _suite(threads_s: float, side_by_side_s: float) -> Suite:
    suite = Suite(quick=True, verbose=False)
    for name, per_op in ((verify.THREADS, threads_s), (verify.SIDE_BY_SIDE, side_by_side_s)):
        suite.results[name] = Result(name, name, "verify", per_op, per_op, 1 / per_op, 5, 0, 1024)
    return suite


def test_the_threaded_gate_fails_a_call_that_leaves_the_second_core_idle_and_passes_when_no_core_is_free():
    gate = next(g for g in GATES if g.result == verify.THREADS)
    assert gate.baseline == verify.SIDE_BY_SIDE
    # Both cores free: side by side 1.8x one thread; a threaded call stuck on one thread is 0.56 of it.
    (failed,) = evaluate_gates(_suite(threads_s=10.9e-6, side_by_side_s=6.05e-6), [gate])
    assert not failed.passed and round(failed.ratio, 2) == 0.56
    # The hypervisor holds a core: both slow alike, and the gate does not blame the native core.
    (passed,) = evaluate_gates(_suite(threads_s=13.2e-6, side_by_side_s=13.0e-6), [gate])
    assert passed.passed and passed.ratio >= 0.8
