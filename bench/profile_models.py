"""Where the time of each issue-21 model case goes: per native op (every pyfastnn.ops call timed by name),
the Python between them (wall time minus the ops), and cProfile's top functions.

    PYTHONPATH=. python bench/profile_models.py [--cases resnet-infer1,gpt2-train,...] [--quick] [--cprofile N]

The per-op table is what to read first: the ops' share is the kernels, the rest is Python, numpy and
allocation between them."""
import argparse
import cProfile
import collections
import functools
import io
import pstats
import time

import numpy as np

import pyfastnn
from pyfastnn import ops
from pyfastnn.bench import model_cases as mc

_op_time = collections.defaultdict(float)
_op_calls = collections.Counter()
_depth = [0]


def _timed(name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _depth[0]:
            return fn(*args, **kwargs)       # an op calling another op: count the outer one only
        _depth[0] += 1
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _op_time[name] += time.perf_counter() - t0
            _op_calls[name] += 1
            _depth[0] -= 1
    return wrapper


def instrument():
    for name in ops.__all__:
        fn = getattr(ops, name)
        if callable(fn):
            setattr(ops, name, _timed(name, fn))


NAMES = ["resnet-infer-b1", "resnet-infer-b16", "resnet-train", "bert-infer", "bert-train", "gpt2-train",
         "gpt2-decode"]      # model_cases' order


def cases(quick):
    return dict(zip(NAMES, mc.model_cases(torch=None, quick=quick)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cases", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--cprofile", type=int, default=15, help="rows of cProfile's table (0: none)")
    args = p.parse_args()
    pyfastnn.set_num_threads(2)
    all_cases = cases(args.quick)
    wanted = args.cases.split(",") if args.cases else list(all_cases)
    instrument()
    for name in wanted:
        case = all_cases[name]
        fn = case.impls["pyfastnn"]
        fn()                                   # warm-up: allocations, optimizer state
        _op_time.clear()
        _op_calls.clear()
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        wall = (time.perf_counter() - t0) / args.repeats
        total_ops = sum(_op_time.values()) / args.repeats
        print(f"\n== {name}: {case.op} {case.shape}: {wall * 1e3:.1f} ms per call; native ops "
              f"{total_ops * 1e3:.1f} ms ({100 * total_ops / wall:.0f}%), the rest {1e3 * (wall - total_ops):.1f} ms")
        for op, t in sorted(_op_time.items(), key=lambda kv: -kv[1])[:14]:
            print(f"   {op:<28} {t / args.repeats * 1e3:9.2f} ms  {_op_calls[op] // args.repeats:6d} calls "
                  f"{100 * t / args.repeats / wall:5.1f}%")
        if args.cprofile:
            prof = cProfile.Profile()
            prof.enable()
            fn()
            prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.cprofile)
            print("\n".join(line for line in s.getvalue().splitlines()[6:] if line.strip()))


if __name__ == "__main__":
    main()
