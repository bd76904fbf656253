"""Timing harness: medians over repeats, peers measured in the same run."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from .._backend import _core


@dataclass
class Case:
    op: str
    shape: str
    flops: float = 0.0          # floating-point operations per call (0: memory-bound case)
    bytes: float = 0.0          # bytes moved per call, for GB/s
    impls: Dict[str, Callable[[], object]] = field(default_factory=dict)
    rounds: int = 5             # alternating rounds per implementation
    min_calls: int = 3          # calls per round at least (whole-model steps take seconds: fewer)
    items: int = 1              # units of work per call (tokens of a decode), for a time per item
    item: str = ""
    extras: Optional[Callable[[], dict]] = None   # more figures for the row (peak memory), run once after timing


def time_median(fn: Callable[[], object], min_repeats: int = 5, budget_s: float = 0.6) -> float:
    """Median seconds per call after a warm-up, repeating until the budget is spent."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < budget_s and len(times) < 200):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_peak_gflops(threads: int, repeats: int = 7) -> float:
    """fp32 peak of this machine on `threads` threads: the best of several FMA-loop
    runs (a peak is a maximum; a run that shared a core with a stray thread is low)."""
    best = 0.0
    for _ in range(repeats):
        best = max(best, _core.measure_peak_gflops(threads, 40_000_000))
        time.sleep(0.05)
    return best


def time_interleaved(impls: Dict[str, Callable[[], object]], budget_s: float, rounds: int = 5,
                     min_calls: int = 3) -> Dict[str, float]:
    """Median seconds per call for each implementation, measured in alternating
    rounds so that all of them see the same machine conditions (a shared host
    drifts by tens of percent over seconds)."""
    times: Dict[str, list] = {name: [] for name in impls}
    first_call: Dict[str, float] = {}
    for name, fn in impls.items():
        t0 = time.perf_counter()
        fn()  # warm-up: allocations, thread pools, caches
        first_call[name] = time.perf_counter() - t0
    for _ in range(rounds):
        for name, fn in impls.items():
            # Let the previous library's worker threads stop spinning (OpenBLAS
            # busy-waits about 0.1 s after a call, OpenMP runtimes too), so
            # they do not steal the cores the next one is timed on.
            time.sleep(0.15)
            # The pause lets the cores idle, and on a VM they come back slowly: the
            # first ~50 calls of a sub-0.1 ms op ran up to 2x slow for either library.
            # Short cases are called untimed for 20 ms first, so each library is timed
            # on cores that are running again; long cases warm the cores themselves.
            if first_call[name] < 2e-3:
                warm_until = time.perf_counter() + 0.02
                while time.perf_counter() < warm_until:
                    fn()
            start = time.perf_counter()
            n = 0
            while n < min_calls or (time.perf_counter() - start < budget_s / rounds and n < 100):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
                n += 1
    return {name: statistics.median(ts) for name, ts in times.items()}


def run_cases(cases, peak_gflops: Optional[float], budget_s: float = 0.6, progress=None):
    rows = []
    for case in cases:
        row = {"op": case.op, "shape": case.shape, "flops": case.flops, "bytes": case.bytes}
        for name, sec in time_interleaved(case.impls, budget_s, case.rounds, case.min_calls).items():
            row[f"{name}_ms"] = sec * 1e3
            if case.items > 1:
                row[f"{name}_ms_per_{case.item}"] = sec * 1e3 / case.items
        t = row.get("pyfastnn_ms")
        if t:
            if case.flops:
                row["gflops"] = case.flops / (t * 1e-3) / 1e9
                if peak_gflops:
                    row["pct_peak"] = 100.0 * row["gflops"] / peak_gflops
            if case.bytes:
                row["gbps"] = case.bytes / (t * 1e-3) / 1e9
            for peer in ("numpy", "torch", "keras", "ort"):
                if row.get(f"{peer}_ms"):
                    row[f"vs_{peer}"] = row[f"{peer}_ms"] / t
        if case.extras is not None:
            row.update(case.extras())
        rows.append(row)
        if progress:
            progress(row)
    return rows
