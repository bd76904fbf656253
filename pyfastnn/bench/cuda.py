"""GPU benchmarks: ``python -m pyfastnn.bench --device cuda``.

Every module ``pyfastnn/bench/cuda_<family>.py`` that exists contributes
cases through ``cases(torch)`` (torch is None when absent or --no-torch):
a list of dicts

    {"op": str, "shape": str, "dtype": "fp32" | "tf32" | "bf16" | "fp16",
     "flops": float or None, "bytes": float or None,
     "impls": {"pyfastnn": callable, "<peer>": callable, ...}}

whose zero-argument callables launch work on CuPy's current stream (or on
the legacy default stream, PyTorch's default; CuPy's default is the same
stream). Each implementation is timed with CUDA events: a few warm-up calls,
then batches of back-to-back calls (~2 ms of GPU work each, so launch gaps
and Python overhead of short calls do not count as GPU time when the host
keeps ahead), the median over batches, bounded by ``--budget`` seconds per
implementation and case. Caches are not flushed between calls; the large
GEMM operands (64 MB and up) exceed the L2 anyway.

fp32 comparisons are made without TF32: CUPY_TF32 and NVIDIA_TF32_OVERRIDE
are set to 0 before CuPy or PyTorch load their libraries, and PyTorch's
allow_tf32 switches are turned off.
"""
from __future__ import annotations

import datetime
import importlib
import json
import os
import pkgutil
import statistics
import sys
import time
import traceback

import pyfastnn

from . import __path__ as bench_path

# Dense peak rates from NVIDIA's datasheets (boost clocks; sparsity figures
# halved), TFLOP/s, and memory bandwidth in GB/s. "fp32" is the CUDA-core
# rate (FFMA), what an fp32 SGEMM or fp32 elementwise kernel can reach.
PEAKS = {
    "H100 SXM": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4, "gbps": 3350.0},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0, "gbps": 2000.0},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5, "gbps": 3900.0},
    "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4, "gbps": 4800.0},
    "A100 80GB": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0, "gbps": 2039.0},
    "A100 40GB": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0, "gbps": 1555.0},
}


def peak_key(device_name: str):
    """The PEAKS entry for a CUDA device name, or None when unknown."""
    name = device_name.upper()
    if "H200" in name:
        return "H200"
    if "H100" in name:
        if "PCIE" in name:
            return "H100 PCIe"
        if "NVL" in name:
            return "H100 NVL"
        return "H100 SXM"
    if "A100" in name:
        return "A100 40GB" if "40GB" in name else "A100 80GB"
    return None


def family_modules():
    """(family, module) for every pyfastnn.bench.cuda_<family> module, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(bench_path), key=lambda i: i.name):
        if info.name.startswith("cuda_"):
            found.append((info.name[len("cuda_"):], f"{__package__}.{info.name}"))
    return found


def time_cuda(fn, cupy, budget_s: float, min_batches: int = 5, max_batches: int = 100, batch_ms: float = 2.0):
    """Median GPU milliseconds per call of fn, from CUDA events around batches of calls."""
    for _ in range(3):
        fn()
    cupy.cuda.Device().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    fn()
    end.record()
    end.synchronize()
    one = max(cupy.cuda.get_elapsed_time(start, end), 1e-3)
    reps = max(1, min(200, int(batch_ms / one)))
    samples = []
    began = time.perf_counter()
    while len(samples) < min_batches or (time.perf_counter() - began < budget_s and len(samples) < max_batches):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, end) / reps)
    return statistics.median(samples)


def _fmt(v, spec):
    """v formatted with spec, or a '-' of the same width."""
    return format(v, spec) if v is not None else format("-", ">" + spec.split(".")[0])


HEADER = (f"{'op':<22} {'shape':<20} {'dtype':<5} {'pyfastnn ms':>11} {'peer':<12} {'peer ms':>9} "
          f"{'x peer':>7} {'TFLOP/s':>8} {'% peak':>7} {'GB/s':>8}")


def format_rows(row):
    """Table lines for one result row: the first peer on the main line, further peers below."""
    peers = [k[:-3] for k in row if k.endswith("_ms") and k != "pyfastnn_ms"] or [None]
    lines = []
    for i, peer in enumerate(peers):
        head = (f"{row['op']:<22} {row['shape']:<20} {row['dtype']:<5} {_fmt(row.get('pyfastnn_ms'), '11.3f')}"
                if i == 0 else f"{'':<22} {'':<20} {'':<5} {'':>11}")
        tail = (f" {_fmt(row.get('tflops'), '8.2f')} {_fmt(row.get('pct_peak'), '7.1f')} {_fmt(row.get('gbps'), '8.1f')}"
                if i == 0 else "")
        peer_ms = row.get(f"{peer}_ms") if peer else None
        lines.append(f"{head} {peer or '-':<12} {_fmt(peer_ms, '9.3f')} {_fmt(row.get(f'vs_{peer}'), '7.2f')}{tail}")
    for name, err in row.get("errors", {}).items():
        lines.append(f"{'':<22} ! {name} failed: {err}")
    return lines


def run_case(case, family, cupy, budget_s, peaks):
    row = {"family": family, "op": case["op"], "shape": case["shape"], "dtype": case.get("dtype", "fp32"),
           "flops": case.get("flops"), "bytes": case.get("bytes")}
    errors = {}
    for name, fn in case["impls"].items():
        try:
            row[f"{name}_ms"] = time_cuda(fn, cupy, budget_s)
        except Exception as exc:  # one broken implementation must not stop the run
            errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            try:
                cupy.cuda.Device().synchronize()
            except Exception:
                pass
    t = row.get("pyfastnn_ms")
    if t:
        if row["flops"]:
            row["tflops"] = row["flops"] / (t * 1e-3) / 1e12
            peak = (peaks or {}).get(row["dtype"])
            if peak:
                row["pct_peak"] = 100.0 * row["tflops"] / peak
        if row["bytes"]:
            row["gbps"] = row["bytes"] / (t * 1e-3) / 1e9
            if not row["flops"] and peaks and peaks.get("gbps"):
                row["pct_peak"] = 100.0 * row["gbps"] / peaks["gbps"]
        for key in list(row):
            if key.endswith("_ms") and key != "pyfastnn_ms" and row[key]:
                row[f"vs_{key[:-3]}"] = row[key] / t
    if errors:
        row["errors"] = errors
    return row


def _wanted(ops_arg, default_ops):
    """None (everything) or the set of names asked for with --ops (families or op names)."""
    if ops_arg is None or ops_arg == default_ops:
        return None
    return {o.strip() for o in ops_arg.split(",") if o.strip()}


def _selected(wanted, family, op):
    return wanted is None or family in wanted or op in wanted or any(op.startswith(w) for w in wanted)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peers = sorted({k[3:] for r in rows for k in r if k.startswith("vs_")})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 4))
    width = 0.8 / max(1, len(peers))
    for i, peer in enumerate(peers):
        ax.bar([x + i * width for x in range(len(rows))], [r.get(f"vs_{peer}", 0) for r in rows], width, label=peer)
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xticks([x + width * (len(peers) - 1) / 2 for x in range(len(rows))])
    ax.set_xticklabels([f"{r['op']}\n{r['shape']} {r['dtype']}" for r in rows], fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("peer time / pyfastnn time (>1: pyfastnn faster)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(args, default_ops=None) -> int:
    """Runs the GPU cases selected by args (ops, no_torch, budget, json, plot); returns an exit status."""
    for var in ("CUPY_TF32", "NVIDIA_TF32_OVERRIDE"):
        if os.environ.get(var, "0") != "0":
            print(f"note: {var}={os.environ[var]} overridden to 0 for fp32 comparisons without TF32")
        os.environ[var] = "0"
    import cupy

    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: F811

            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            if not torch.cuda.is_available():
                torch = None
        except ImportError:
            torch = None

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    key = peak_key(name)
    peaks = PEAKS.get(key)
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": name,
        "peak_table": key,
        "peaks": peaks,
        "sm_count": props.get("multiProcessorCount"),
        "cupy": cupy.__version__,
        "torch": getattr(torch, "__version__", None),
        "pyfastnn": pyfastnn.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "driver": cupy.cuda.runtime.driverGetVersion(),
        "tf32": "off for fp32 (CUPY_TF32=0, NVIDIA_TF32_OVERRIDE=0, torch allow_tf32=False)",
        "timing": "CUDA events, median over batches of back-to-back calls, no cache flush",
    }
    peak_desc = (", ".join(f"{k} {v:g}" for k, v in peaks.items() if k != "gbps") + f" TFLOP/s, {peaks['gbps']:g} GB/s"
                 if peaks else "n/a (unknown device: no % of peak)")
    print(f"pyfastnn {meta['pyfastnn']} | {name} | CuPy {meta['cupy']} | torch {meta['torch'] or 'not used'}")
    print(f"peak ({key or 'unknown'}): {peak_desc}")
    print("median GPU time per call; 'x peer' = peer time / pyfastnn time (>1: pyfastnn faster); "
          "% peak: TFLOP/s against the dtype's dense peak (GB/s against bandwidth for byte-only cases)\n")

    wanted = _wanted(getattr(args, "ops", None), default_ops)
    rows, failures = [], 0
    print(HEADER)
    print("-" * len(HEADER), flush=True)
    for family, modname in family_modules():
        try:
            module = importlib.import_module(modname)
            cases = module.cases(torch)
        except Exception as exc:
            failures += 1
            print(f"! {modname}: could not build its cases: {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc(file=sys.stderr)
            continue
        for case in cases:
            if not _selected(wanted, family, case["op"]):
                continue
            row = run_case(case, family, cupy, args.budget, peaks)
            failures += bool(row.get("errors"))
            rows.append(row)
            for line in format_rows(row):
                print(line, flush=True)
        del cases
        cupy.get_default_memory_pool().free_all_blocks()
    if not rows:
        print("no GPU benchmark cases matched" + (f" --ops {args.ops}" if wanted else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if getattr(args, "plot", None) and rows:
        plot(rows, args.plot)
    return 1 if failures else 0
