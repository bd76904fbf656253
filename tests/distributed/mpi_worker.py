"""Run under mpiexec by test_distributed.py: python mpi_worker.py MODE OUTDIR."""
import os
import sys

import numpy as np

import pyfastnn
import pyfastnn.distributed as dist
from pyfastnn import nn


def model():
    pyfastnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 16),
                         nn.ReLU(), nn.Linear(16, 3))


def data(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n)


def main():
    mode, out = sys.argv[1], sys.argv[2]
    rank, world = dist.init()
    if mode == "steps":
        # 20 steps of Adam on global batches of 2*8 samples; each rank takes its half.
        net = model()
        if rank == 1:   # start from different weights: the wrapper must broadcast rank 0's
            for p in net.parameters():
                p.data[...] += 1.0
        ddp = dist.DistributedDataParallel(net, bucket_mb=0.001)      # several buckets
        opt = pyfastnn.optim.Adam(net.parameters(), lr=1e-2)
        x, y = data(20 * 16)
        for step in range(20):
            g = slice(step * 16, (step + 1) * 16)
            mine = np.array_split(np.arange(16), world)[rank]
            xb, yb = x[g][mine], y[g][mine]
            loss = nn.functional.cross_entropy(ddp(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        np.savez(os.path.join(out, f"params_{rank}.npz"), *[p.numpy() for p in net.parameters()])
    elif mode == "fit":
        net = model()
        net.compile(pyfastnn.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), "sparse_categorical_crossentropy",
                    metrics=["accuracy"])
        x, y = data(101)          # 101 = 6 global batches of 16 and a last one of 5 (3 + 2 per rank)
        pyfastnn.manual_seed(5)   # the shuffle: the same seed on every rank
        hist = net.fit(x, y, epochs=3, batch_size=8, validation_data=data(30, seed=2), verbose=2)
        np.savez(os.path.join(out, f"fit_{rank}.npz"), **{k: np.array(v) for k, v in hist.items()},
                 **{f"p{i}": p.numpy() for i, p in enumerate(net.parameters())})
    elif mode == "collectives":
        a = np.full(5, rank + 1.0)
        dist.all_reduce(a)
        b = np.full(3, float(rank), np.float32)
        dist.all_reduce(b, op="max")
        c = np.arange(4.0) * (rank + 1)
        dist.all_reduce(c, op="mean")
        d = np.full(2, rank * 10.0)
        dist.broadcast(d, root=world - 1)
        np.savez(os.path.join(out, f"coll_{rank}.npz"), a=a, b=b, c=c, d=d,
                 threads=pyfastnn.get_num_threads())
    elif mode == "raise":
        if rank == 1:
            raise RuntimeError("rank one failed on purpose")
        dist.barrier()          # rank 0 would wait here forever without the abort
    elif mode == "mismatch":
        dist.all_reduce(np.ones(3 + rank))


if __name__ == "__main__":
    main()
