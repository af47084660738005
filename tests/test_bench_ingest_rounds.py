"""How the ingest benchmark judges its duplicate target (benchmarks/ingest.py): against all-new batches
on the same store, their rounds alternating with the duplicate case's, each round's ratio kept."""

from __future__ import annotations

import pytest

from benchmarks.ingest import Case, _interleaved, _pair_ratios, _pushes, cases, duplicate_line, main, mixed


def test_the_duplicate_case_and_its_baseline_run_as_one_interleaved_group_in_place():
    quick = cases(True)
    groups = _interleaved(quick)
    keys = [[c.key for c in g] for g in groups]
    assert keys == [["http.0peers"], ["http.5peers"], ["http.100k_subs"], ["http.new_held", "http.dup90"], ["http.stored"]]
    # Asked for alone, either runs alone (nothing to pair it with).
    only_dup = [c for c in quick if c.key == "http.dup90"]
    assert [[c.key for c in g] for g in _interleaved(only_dup)] == [["http.dup90"]]
    assert sum(len(g) for g in _interleaved(cases(False))) == len(cases(False))


def test_the_baseline_pushes_all_new_intents_onto_the_store_the_duplicate_case_starts_from():
    raws = [bytes([1, i]) for i in range(40)]
    old = [bytes([2, i]) for i in range(90)]
    held = Case("http.new_held", "held", held=True)
    dup = Case("http.dup90", "dup", duplicates=0.9)
    pushed, before = _pushes(held, raws, old, 10)
    assert pushed == raws and before == old
    pushed, before = _pushes(dup, raws, old, 10)
    assert before == old and pushed == mixed(raws[:9], old, 0.9, 10)
    assert sum(p in old for p in pushed) == 81 and len(pushed) == 90  # nine batches of nine copies, one new
    assert _pushes(Case("http.0peers", "fresh"), raws, old, 10) == (raws, [])


def test_each_round_is_divided_by_the_all_new_round_just_before_it_and_the_median_is_the_figure():
    new = [{"items_per_s": 40_000}, {"items_per_s": 30_000}, {"items_per_s": 50_000}]
    dup = [{"items_per_s": 100_000}, {"items_per_s": 99_000}, {"items_per_s": 160_000}]
    row: dict = {}
    _pair_ratios(row, new, dup)
    assert row["round_ratios"] == [2.5, 3.3, 3.2]  # in the order they ran
    assert row["ratio_to_all_new"] == 3.2  # not 99k/40k, the medians' ratio across rounds
    even: dict = {}
    _pair_ratios(even, new[:2], dup[:2])
    assert even["ratio_to_all_new"] == 2.9  # of two: their mean


def test_the_target_line_is_judged_on_the_interleaved_ratio_with_the_others_beside_it():
    rows = {
        "http.dup90": {"items_per_s": 90_000, "cpu_us_per_item": 10.0, "ratio_to_verify_only": 0.9,
                       "round_ratios": [2.5, 3.1, 3.3], "ratio_to_all_new": 3.1},
        "http.new_held": {"items_per_s": 30_000, "cpu_us_per_item": 40.0, "ratio_to_verify_only": 0.3},
        "http.0peers": {"items_per_s": 45_000, "cpu_us_per_item": 30.0, "ratio_to_verify_only": 0.45},
    }  # fmt: skip
    line = duplicate_line(rows, {"verify_only_per_s": 100_000})
    assert line.startswith("target 90 %-duplicate batches >= 3.0x all-new: met (3.10x all-new batches on the same store")
    assert "interleaved: 2.50, 3.10, 3.30)" in line and "CPU per item 4.00x" in line
    assert "against the 0-peer case 2.00x raw, 2.00x load-normalized" in line


def test_the_target_line_says_not_met_under_three_and_not_judged_without_its_baseline():
    dup = {"items_per_s": 80_000, "cpu_us_per_item": 12.0, "ratio_to_verify_only": 0.8,
           "round_ratios": [2.9, 2.4, 3.1], "ratio_to_all_new": 2.9}  # fmt: skip
    line = duplicate_line({"http.dup90": dup}, {"verify_only_per_s": 100_000})
    assert line == ("target 90 %-duplicate batches >= 3.0x all-new: NOT met (2.90x all-new batches on the same store, "
                    "rounds interleaved: 2.90, 2.40, 3.10)")  # fmt: skip
    alone = {k: v for k, v in dup.items() if k not in ("round_ratios", "ratio_to_all_new")}
    assert "not judged (http.new_held did not run beside it)" in duplicate_line({"http.dup90": alone}, {"verify_only_per_s": 1})


def test_a_case_that_does_not_exist_is_refused_with_the_list_of_cases(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--quick", "--case", "http.1m_subs"])  # a full-size case only
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "no such case in quick mode: http.1m_subs" in err and "http.new_held" in err
