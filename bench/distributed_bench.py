"""Data-parallel benchmarks (issue: distributed). Run under MPI and alone:

    mpiexec -n 2 python bench/distributed_bench.py allreduce     # wrapper vs raw mpi4py, 1-100 MB
    mpiexec -n 2 python bench/distributed_bench.py train         # tutorial CNN, 2 ranks x 1 thread
    PYFASTNN_NUM_THREADS=1 python bench/distributed_bench.py train   # 1 process x 1 thread
    PYFASTNN_NUM_THREADS=2 python bench/distributed_bench.py train   # 1 process x 2 threads

Medians over repeats; samples/s counts every rank's samples.
"""
import statistics
import sys
import time

import numpy as np

import pyfastnn
from pyfastnn import nn


def allreduce():
    import pyfastnn.distributed as dist
    from mpi4py import MPI
    rank, world = dist.init()
    comm = MPI.COMM_WORLD
    if rank == 0:
        print(f"allreduce, {world} ranks: MB, mpi4py ms, pyfastnn ms, overhead %, pyfastnn GB/s (algorithm bw), "
              f"without the shape check: ms, overhead %")
    for mb in (1, 10, 100):
        buf = np.ones((mb << 20) // 4, np.float32)
        times = {"mpi4py": [], "pyfastnn": [], "unchecked": []}
        reps = 60 if mb < 100 else 12
        for _ in range(2):
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            dist.all_reduce(buf)
        calls = {"mpi4py": lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM),
                 "pyfastnn": lambda: dist.all_reduce(buf),
                 "unchecked": lambda: dist.all_reduce(buf, check=False)}   # what the DDP buckets use
        names = list(calls)
        for i in range(reps):      # rotate the order, so all see the same conditions
            for name in names[i % 3:] + names[:i % 3]:
                comm.Barrier()
                t = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - t)
        m = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        if rank == 0:
            gbps = 2 * (world - 1) / world * buf.nbytes / (m["pyfastnn"] * 1e-3) / 1e9
            print(f"{mb:4d}  {m['mpi4py']:8.3f}  {m['pyfastnn']:8.3f}  {100 * (m['pyfastnn'] / m['mpi4py'] - 1):6.1f}"
                  f"  {gbps:6.1f}  {m['unchecked']:8.3f}  {100 * (m['unchecked'] / m['mpi4py'] - 1):6.1f}")


def train():
    distributed = "OMPI_COMM_WORLD_SIZE" in __import__("os").environ
    rank, world = 0, 1
    if distributed:
        import pyfastnn.distributed as dist
        rank, world = dist.init()
    pyfastnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    results = {}
    configs = [(False, 25), (True, 25), (True, 0.25), (False, 0.25)] if distributed else [(None, None)]
    for overlap, bucket_mb in configs:
        net = model
        if distributed:
            net = dist.DistributedDataParallel(model, bucket_mb=bucket_mb, overlap=overlap)
        opt = pyfastnn.optim.Adam(model.parameters())
        rng = np.random.default_rng(rank)
        x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 64)
        times = []
        for i in range(70):
            t = time.perf_counter()
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i >= 10:
                times.append(time.perf_counter() - t)
        results[(overlap, bucket_mb, len(getattr(net, "_buckets", ())))] = statistics.median(times)
        if distributed:   # drop this wrapper's hooks before the next one
            for p in model.parameters():
                p._grad_hooks = []
    if rank == 0:
        for (overlap, bucket_mb, nb), step in results.items():
            label = f"{world} ranks x {pyfastnn.get_num_threads()} thread(s)" + (
                "" if overlap is None else f", {nb} bucket(s) of <= {bucket_mb} MB, " + (
                    "reductions overlapped with backward" if overlap else "reduced after backward"))
            print(f"tutorial CNN, batch 64 per rank: {label}: {step * 1e3:.2f} ms/step, "
                  f"{64 * world / step:.0f} samples/s")


if __name__ == "__main__":
    {"allreduce": allreduce, "train": train}[sys.argv[1]]()
