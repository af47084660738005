"""Timing, ratios, gates and reporting for the benchmarks.

A benchmark is a zero-argument callable doing ``ops`` operations per call. Each is calibrated to a round
of about ``round_time`` seconds; the rounds of a group's benchmarks are interleaved and timed with
time.perf_counter, and the best and the median time per operation are kept (best is the figure used
for ratios: it is the least disturbed by other work on the machine).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    name: str  # unique key, e.g. "verify.native.batch256"
    label: str  # for the table
    group: str  # "verify" or "codec"
    per_op_s: float  # best round, seconds per operation
    median_per_op_s: float
    ops_per_s: float
    rounds: int
    calls_per_round: int
    ops_per_call: int
    baseline: str | None = None  # name of the Result this is compared with
    ratio: float | None = None  # baseline per-op time / this per-op time (>1 = faster)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Gate:
    name: str
    result: str  # the Result measured
    baseline: str  # what it is compared with
    min_ratio: float
    ratio: float | None = None
    passed: bool | None = None
    # Gates whose ratio needs idle cores (threads vs one thread) are skipped, with the reason printed,
    # when the load average is above the core count: a busy neighbour must not fail CI.
    needs_idle_cores: bool = False
    skipped: str | None = None

    def describe(self) -> str:
        got = "not measured" if self.ratio is None else f"{self.ratio:.2f}x"
        text = f"{self.name}: {self.result} vs {self.baseline} = {got} (need >= {self.min_ratio:g}x)"
        return text if self.skipped is None else f"{text}; SKIPPED: {self.skipped}"


def calibrate(fn: Callable[[], Any], round_time: float, max_calls: int = 1_000_000) -> int:
    """How many calls of fn take about round_time seconds (after one warm-up call)."""
    fn()  # warm up (caches, lazy imports)
    calls = 1
    while True:  # double (or extrapolate) until one round takes round_time
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= round_time or calls >= max_calls:
            return calls
        calls = min(max_calls, max(calls * 2, int(calls * round_time / max(elapsed, 1e-9))))


def timed_round(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def measure_interleaved(
    fns: list[Callable[[], Any]], ops: list[int], *, rounds: int, round_time: float
) -> list[tuple[float, float, int]]:
    """(best, median) seconds per operation and calls per round, for each fn.

    The rounds of all fns are interleaved (A B C A B C ...), so a benchmark and its baseline see the
    same background load: on a busy machine the ratio stays meaningful even when absolute times
    drift. The garbage collector is off during the rounds.
    """
    calls = [calibrate(fn, round_time) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for i, fn in enumerate(fns):
                samples[i].append(timed_round(fn, calls[i]) / (calls[i] * ops[i]))
    finally:
        if gc_was_enabled:
            gc.enable()
    return [(min(s), statistics.median(s), c) for s, c in zip(samples, calls)]


@dataclass
class Bench:
    """One benchmark to run: ``fn()`` performs ``ops`` operations."""

    name: str
    label: str
    fn: Callable[[], Any]
    ops: int = 1
    baseline: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Suite:
    """Collects results; prints them as they come so a slow run shows progress."""

    def __init__(self, *, quick: bool, verbose: bool = True) -> None:
        self.quick = quick
        self.verbose = verbose
        self.results: dict[str, Result] = {}
        self.rounds = 5 if quick else 9
        self.round_time = 0.05 if quick else 0.2

    def run_group(self, group: str, benches: list[Bench], *, round_time: float | None = None) -> None:
        """Measures the benches of one group with interleaved rounds; a baseline must be in the same
        group or measured before."""
        if self.verbose:
            print(f"[{group}] {len(benches)} benchmarks ...", file=sys.stderr)
        measured = measure_interleaved(
            [b.fn for b in benches],
            [b.ops for b in benches],
            rounds=self.rounds,
            round_time=round_time or self.round_time,
        )
        for bench, (best, median, calls) in zip(benches, measured):
            self.results[bench.name] = Result(
                name=bench.name,
                label=bench.label,
                group=group,
                per_op_s=best,
                median_per_op_s=median,
                ops_per_s=1.0 / best,
                rounds=self.rounds,
                calls_per_round=calls,
                ops_per_call=bench.ops,
                baseline=bench.baseline,
                extra=bench.extra,
            )
        for bench in benches:
            result = self.results[bench.name]
            if bench.baseline is not None:
                result.ratio = self.results[bench.baseline].per_op_s / result.per_op_s
            if self.verbose:
                ratio = f"  {result.ratio:6.2f}x vs {bench.baseline}" if result.ratio is not None else ""
                print(
                    f"  {result.label:<52} {fmt_time(result.per_op_s):>10}/op {result.ops_per_s:>12,.0f} op/s{ratio}",
                    file=sys.stderr,
                )

    def ratio(self, name: str, baseline: str) -> float:
        result = self.results[name]
        if result.baseline == baseline and result.ratio is not None:  # a ratio the benchmark measured itself (e.g. CPU time)
            return result.ratio
        return self.results[baseline].per_op_s / result.per_op_s


def fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


_STEAL = 7  # cpu_ticks' index of steal


def cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far, all cores, in ticks: /proc/stat's user, nice, system, idle,
    iowait, irq, softirq and steal (None without /proc)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    return [int(x) for x in fields[1:9]] if len(fields) >= 9 and fields[0] == "cpu" else None


def machine_load() -> dict[str, Any]:
    """The load averages (1, 5, 15 min), the core count and the CPU counters (``cpu_ticks``), printed
    by every benchmark before and after."""
    return {"load": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count() or 1, "cpu_ticks": cpu_ticks()}


def stolen_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of all cores' time between two ``cpu_ticks`` readings that the hypervisor gave to
    other guests (steal): on a shared VM a run's figures drift with it, and the load average does not
    show it."""
    if before is None or after is None:
        return None
    spent = [y - x for x, y in zip(before, after, strict=True)]
    return spent[_STEAL] / sum(spent) if sum(spent) > 0 else None


def print_load(when: str, since: dict[str, Any] | None = None) -> dict[str, Any]:
    """Print the machine's load now; with ``since`` (the reading before), also the CPU time stolen in
    between, which the returned reading carries as ``stolen``."""
    m = machine_load()
    line = f"machine load {when} (1, 5, 15 min): {m['load']} on {m['cpus']} cpus"
    stolen = stolen_share(since.get("cpu_ticks"), m["cpu_ticks"]) if since is not None else None
    if stolen is not None:
        m["stolen"] = round(stolen, 4)
        line += f"; CPU time stolen by the hypervisor since before: {stolen:.1%}"
    print(line, file=sys.stderr)
    return m


def evaluate_gates(suite: Suite, gates: list[Gate], *, load: dict[str, Any] | None = None) -> list[Gate]:
    busy = load is not None and max(load["load"][0], machine_load()["load"][0]) > load["cpus"]
    for gate in gates:
        if gate.needs_idle_cores and busy:
            if gate.result in suite.results and gate.baseline in suite.results:
                gate.ratio = suite.ratio(gate.result, gate.baseline)
            gate.skipped = f"load average {load['load'][0]} > {load['cpus']} cores (CPU shared; ratio reported only)"
            gate.passed = True
        elif gate.result in suite.results and gate.baseline in suite.results:
            gate.ratio = suite.ratio(gate.result, gate.baseline)
            gate.passed = gate.ratio >= gate.min_ratio
        else:
            gate.passed = False
    return gates


def print_table(suite: Suite, gates: list[Gate]) -> None:
    rows = [
        (
            r.group,
            r.label,
            fmt_time(r.per_op_s),
            fmt_time(r.median_per_op_s),
            f"{r.ops_per_s:,.0f}",
            "" if r.ratio is None else f"{r.ratio:.2f}x",
            r.baseline or "",
        )
        for r in suite.results.values()
    ]
    headers = ("group", "benchmark", "best/op", "median/op", "ops/s", "ratio", "vs")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        for gate in gates:
            print(("SKIP " if getattr(gate, "skipped", None) else "PASS " if gate.passed else "FAIL ") + gate.describe())
        return
    table = Table(title="vrm-node message layer")
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if 2 <= i <= 5 else "left")
    for row in rows:
        table.add_row(*row)
    console = Console(width=max(130, Console().width))
    console.print(table)
    for gate in gates:
        word = "SKIP" if getattr(gate, "skipped", None) else "PASS" if gate.passed else "FAIL"
        style = "yellow" if word == "SKIP" else "green" if gate.passed else "bold red"
        console.print(f"[{style}]{word}[/{style}] {gate.describe()}")


def write_json(path: Path, suite: Suite, gates: list[Gate], meta: dict[str, Any]) -> None:
    data = {
        "meta": {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "quick": suite.quick,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **meta,
        },
        "results": [asdict(r) for r in suite.results.values()],
        "gates": [asdict(g) for g in gates],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
