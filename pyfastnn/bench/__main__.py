"""python -m pyfastnn.bench [--ops matmul] [--threads N] [--quick] [--json F] [--plot F.png]"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys

import pyfastnn

from .._backend import _core
from .cases import ALL, QUICK
from .cuda import main as cuda_main
from .runner import measure_peak_gflops, run_cases


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _limit_peer_threads(threads, torch):
    """Gives NumPy's BLAS and PyTorch the same thread count as pyfastnn."""
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads)


def _fmt(v, spec):
    return format(v, spec) if v is not None else "-"


def print_table(rows, file=sys.stdout, keras=None, models=False):
    """The results table; keras adds the Keras front-end's peer, models the whole-model columns (ONNX
    Runtime, time per decoded token, peak memory) and wider labels."""
    w_op, w_shape = (26, 20) if models else (18, 16)
    head = f"{'op':<{w_op}} {'shape':<{w_shape}} {'pyfastnn ms':>11} {'numpy ms':>9} {'torch ms':>9} " \
           f"{'x numpy':>8} {'x torch':>8} {'GFLOP/s':>8} {'% peak':>7} {'GB/s':>7}"
    keras = any(r.get("keras_ms") for r in rows) if keras is None else keras
    if keras:   # the Keras front-end's peer
        head += f" {'keras ms':>9} {'x keras':>8}"
    if models:
        head += f" {'ort ms':>9} {'x ort':>6} {'ms/token':>9} {'torch ms/token':>14} {'peak MB':>8} {'torch MB':>8}"
    print(head, file=file)
    print("-" * len(head), file=file)
    for r in rows:
        print(f"{r['op']:<{w_op}} {r['shape']:<{w_shape}} {_fmt(r.get('pyfastnn_ms'), '11.3f')} "
              f"{_fmt(r.get('numpy_ms'), '9.3f')} {_fmt(r.get('torch_ms'), '9.3f')} "
              f"{_fmt(r.get('vs_numpy'), '8.2f')} {_fmt(r.get('vs_torch'), '8.2f')} "
              f"{_fmt(r.get('gflops'), '8.1f')} {_fmt(r.get('pct_peak'), '7.1f')} {_fmt(r.get('gbps'), '7.1f')}"
              + (f" {_fmt(r.get('keras_ms'), '9.3f')} {_fmt(r.get('vs_keras'), '8.2f')}" if keras else "")
              + (f" {_fmt(r.get('ort_ms'), '9.3f')} {_fmt(r.get('vs_ort'), '6.2f')}"
                 f" {_fmt(r.get('pyfastnn_ms_per_token'), '9.2f')} {_fmt(r.get('torch_ms_per_token'), '14.2f')}"
                 f" {_fmt(r.get('pyfastnn_peak_rss_mb'), '8.0f')} {_fmt(r.get('torch_peak_rss_mb'), '8.0f')}"
                 if models else ""),
              file=file, flush=True)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['op']}\n{r['shape']}" for r in rows]
    peers = [p for p in ("pyfastnn", "numpy", "torch", "keras") if any(r.get(f"{p}_ms") for r in rows)]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 4))
    width = 0.8 / len(peers)
    for i, p in enumerate(peers):
        speed = [(r["pyfastnn_ms"] / r[f"{p}_ms"]) if r.get(f"{p}_ms") else 0 for r in rows]
        ax.bar([x + i * width for x in range(len(rows))], speed, width, label=p)
    ax.set_xticks([x + width * (len(peers) - 1) / 2 for x in range(len(rows))])
    ax.set_xticklabels(labels, fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("speed relative to pyfastnn (higher is faster)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pyfastnn.bench", description=__doc__)
    p.add_argument("--ops", default=",".join(ALL), help=f"comma-separated, from: {', '.join(ALL)}")
    p.add_argument("--threads", type=int, default=None, help="threads for every library (default: pyfastnn's)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--quick", action="store_true",
                   help="the models cases on tiny configurations (a smoke run; the figures mean nothing)")
    p.add_argument("--budget", type=float, default=0.6, help="seconds of timing per implementation and case")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the speed ratios (needs matplotlib)")
    args = p.parse_args(argv)

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error("--plot needs matplotlib: pip install 'pyfastnn[bench]'")
    if args.device == "cuda":
        info = pyfastnn.backend_info()
        if not info["cuda_available"]:
            p.error(f"--device cuda: CUDA is not available: {info['cuda_error']}")
        import importlib.util

        if importlib.util.find_spec("cupy") is None:  # not imported here: cuda.main sets TF32 switches first
            p.error("--device cuda: needs CuPy (pip install 'pyfastnn[cuda]')")
        return cuda_main(args, default_ops=",".join(ALL))
    wanted = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = [o for o in wanted if o not in ALL]
    if unknown:
        p.error(f"unknown op(s) {unknown}; choose from {list(ALL)}")

    threads = args.threads or pyfastnn.get_num_threads()
    pyfastnn.set_num_threads(threads)
    peak = measure_peak_gflops(threads)  # before any peer library starts its threads
    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: F811
        except ImportError:
            torch = None
    limiter = _limit_peer_threads(threads, torch)
    info = pyfastnn.backend_info()
    import numpy

    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": _cpu_name(),
        "isa": info["cpu_isa"],
        "threads": threads,
        "peak_fp32_gflops": peak,
        "numpy": numpy.__version__,
        "torch": getattr(torch, "__version__", None),
        "pyfastnn": pyfastnn.__version__,
    }
    print(f"pyfastnn {meta['pyfastnn']} | {meta['cpu']} | ISA {meta['isa']} | {threads} threads | "
          f"numpy {meta['numpy']} | torch {meta['torch'] or 'not installed'}")
    print(f"measured fp32 peak (FMA loop, {threads} threads): {peak:.1f} GFLOP/s")
    if {"pool", "optim", "newops", "models"} & set(wanted):  # memory-bound cases: their GB/s is read against this
        meta["memcpy_gbps"] = {f"{mb}MB": _core.measure_copy_gbps(mb << 20, threads) for mb in (8, 256)}
        print("measured memcpy bandwidth (read + write, %d threads): %s" % (
            threads, ", ".join(f"{v:.1f} GB/s at {k}" for k, v in meta["memcpy_gbps"].items())))
    if "models" in wanted:   # a decode step streams its weights once: its GB/s is read against this
        meta["read_gbps"] = _core.measure_read_gbps(512 << 20, threads)
        print(f"measured memory read bandwidth ({threads} threads, 512 MB): {meta['read_gbps']:.1f} GB/s")
    print("median time per call; 'x numpy' / 'x torch' / 'x keras' = peer time / pyfastnn time (>1: pyfastnn faster)\n")
    cases = [c for op in wanted for c in (ALL[op](torch=torch, quick=True) if args.quick and op in QUICK
                                          else ALL[op](torch=torch))]
    global _KERAS_COLUMNS, _MODEL_COLUMNS
    _KERAS_COLUMNS, _MODEL_COLUMNS = bool({"keras", "keras_tutorial"} & set(wanted)), "models" in wanted
    print_table([], file=sys.stdout, keras=_KERAS_COLUMNS, models=_MODEL_COLUMNS)
    rows = run_cases(cases, peak, budget_s=args.budget, progress=print_table_row)
    for case, row in zip(cases, rows):
        waits = getattr(case, "notes", None)
        if waits and row.get("pyfastnn_ms"):
            share = 100.0 * float(numpy.median(waits)) / (row["pyfastnn_ms"] * 1e-3)
            row["data_wait_pct"] = share
            print(f"{case.op}: pyfastnn's loop waited for data {share:.1f}% of the time (median of "
                  f"{len(waits)} fits)")
        if meta.get("read_gbps") and row.get("gbps") and row.get("pyfastnn_ms_per_token"):
            row["pct_read_bw"] = 100.0 * row["gbps"] / meta["read_gbps"]
    if limiter is not None:
        limiter.restore_original_limits()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if args.plot:
        plot(rows, args.plot)
    return 0


_KERAS_COLUMNS = False
_MODEL_COLUMNS = False


def print_table_row(r):
    import io

    buf = io.StringIO()
    print_table([r], file=buf, keras=_KERAS_COLUMNS, models=_MODEL_COLUMNS)
    print(buf.getvalue().splitlines()[-1], flush=True)


if __name__ == "__main__":
    sys.exit(main())
