"""What every benchmark prints about the machine it ran on (benchmarks/harness.py): the load averages
and the share of CPU time a shared VM's hypervisor took meanwhile, which moves every figure."""

from __future__ import annotations

import time

from benchmarks.harness import cpu_ticks, print_load, stolen_share


def test_the_stolen_share_is_steal_over_all_cpu_time_between_two_readings():
    before = [100, 0, 50, 800, 0, 0, 0, 50]
    after = [400, 0, 150, 1200, 0, 0, 0, 250]  # 1,000 ticks spent, 200 of them stolen
    assert stolen_share(before, after) == 0.2
    assert stolen_share(before, before) is None  # no time passed: no share to tell
    assert stolen_share(None, after) is None and stolen_share(before, None) is None


def test_the_reading_after_a_run_carries_and_prints_what_was_stolen(capsys):
    ticks = cpu_ticks()
    assert ticks is not None and len(ticks) == 8 and all(t >= 0 for t in ticks)  # Linux: /proc/stat
    before = print_load("before")
    until = time.monotonic() + 0.1
    while time.monotonic() < until:  # ten ticks of every core pass (USER_HZ is 100)
        pass
    after = print_load("after", since=before)
    err = capsys.readouterr().err
    assert "machine load before" in err and "stolen" not in err.splitlines()[0]
    assert 0.0 <= after["stolen"] <= 1.0
    assert f"stolen by the hypervisor since before: {after['stolen']:.1%}" in err
