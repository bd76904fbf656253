"""Data-parallel training across processes and hosts on MPI (mpi4py) and NCCL (CuPy).

    mpiexec -n 2 python train.py          # one host
    mpiexec -n 8 --hostfile hosts python train.py

    import pyfastnn.distributed as dist
    rank, world = dist.init()
    model = dist.DistributedDataParallel(model)   # or just model.fit(...): it shards and syncs itself
"""
from .comm import (all_gather_object, all_reduce, backend, barrier, broadcast, init, is_initialized, local_size,
                   rank, shutdown, world_size)
from .ddp import DistributedDataParallel

__all__ = ["init", "shutdown", "is_initialized", "rank", "world_size", "local_size", "backend", "barrier",
           "all_reduce", "broadcast", "all_gather_object", "DistributedDataParallel"]
