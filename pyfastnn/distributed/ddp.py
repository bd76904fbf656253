"""DistributedDataParallel: every rank holds the whole model; after each
backward the gradients are averaged across ranks in flat buckets.

A bucket's reduction starts (non-blocking) as soon as the last of its
gradients is final — the autograd engine walks a leaf after all its uses, and
parameters go into buckets in reverse registration order, roughly the order
backward produces them — and backward's end waits for all of them, in a fixed
order, so repeated runs are bit-identical.
"""
from __future__ import annotations

import numpy as np

from ..autograd import queue_callback
from ..nn.module import Module
from ..tensor import Tensor
from . import comm as _comm

__all__ = ["DistributedDataParallel"]


class _Bucket:
    __slots__ = ("params", "offsets", "flat", "ready", "request", "launched")

    def __init__(self, params, dtype):
        self.params = params
        sizes = [p._array.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.flat = np.empty(int(self.offsets[-1]), dtype)
        self.ready = 0
        self.request = None
        self.launched = False


class DistributedDataParallel(Module):
    """Wraps a module for data-parallel training on the initialized process group.

    At construction rank 0's parameters and buffers are broadcast to every
    rank (after checking that every rank holds the same shapes). Use it like
    the module; ``grad_scale`` (default 1) weighs this rank's gradients before
    the average, for shards of unequal size: fit sets it to
    ``world_size * local_samples / global_samples``."""

    def __init__(self, module, bucket_mb=25, overlap=True):
        super().__init__()
        if not _comm.is_initialized():
            raise RuntimeError("DistributedDataParallel: call pyfastnn.distributed.init() first (and launch with "
                               "mpiexec -n N)")
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        if bucket_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_mb must be positive, got {bucket_mb}")
        self.module = module
        object.__setattr__(self, "overlap", bool(overlap))
        object.__setattr__(self, "grad_scale", 1.0)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        sigs = [(n, tuple(p.shape), str(p.dtype)) for n, p in named]
        every = _comm.all_gather_object(sigs)
        for r, other in enumerate(every):
            if other != sigs:
                diff = next((f"'{a[0]}' {a[1]} {a[2]} here vs '{b[0]}' {b[1]} {b[2]} on rank {r}"
                             for a, b in zip(sigs, other) if a != b), f"{len(sigs)} vs {len(other)} parameters")
                raise ValueError(f"DistributedDataParallel: rank {_comm.rank()} and rank {r} hold different models "
                                 f"({diff})")
        for _, p in named:
            _comm.broadcast(p._array, 0, check=False)
        for _, b in module.named_buffers():
            if isinstance(b, np.ndarray) and b.flags.c_contiguous and b.ndim:
                _comm.broadcast(b, 0, check=False)
        # buckets in reverse order: the last layers' gradients are final first
        limit = int(bucket_mb * (1 << 20))
        buckets, current, size, dtype = [], [], 0, None
        for _, p in reversed(named):
            nbytes = p._array.nbytes
            if current and (size + nbytes > limit or p.dtype != dtype):
                buckets.append(_Bucket(current, dtype))
                current, size = [], 0
            current.append(p)
            size += nbytes
            dtype = p.dtype
        if current:
            buckets.append(_Bucket(current, dtype))
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_bucket_of", {id(p): b for b in buckets for p in b.params})
        object.__setattr__(self, "_pending", False)
        for _, p in named:
            p.register_post_accumulate_grad_hook(self._grad_ready)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    # --------------------------------------------------------- reduction
    def _grad_ready(self, p):
        if not self._pending:
            object.__setattr__(self, "_pending", True)
            queue_callback(self._finish)
        bucket = self._bucket_of[id(p)]
        bucket.ready += 1
        if self.overlap and bucket.ready == len(bucket.params):
            self._launch(bucket)
        self._progress()

    def _progress(self):
        """Lets MPI move launched reductions along (Open MPI progresses inside MPI calls)."""
        for b in self._buckets:
            if b.request is not None:
                b.request.Test()

    def _launch(self, bucket):
        flat, offsets = bucket.flat, bucket.offsets
        for i, p in enumerate(bucket.params):
            dst = flat[offsets[i]:offsets[i + 1]]
            if p.grad is None:
                dst[...] = 0
            else:
                np.copyto(dst, p.grad._array.reshape(-1), casting="same_kind")
        scale = self.grad_scale / _comm.world_size()
        if scale != 1.0:
            flat *= scale
        if _comm.world_size() > 1:
            MPI = _comm._state.mpi
            # The last bucket (the first layers) completes when backward is over: nothing is left to
            # overlap with it, and a blocking reduction is cheaper than Iallreduce + Wait.
            if self.overlap and bucket is not self._buckets[-1]:
                bucket.request = _comm._state.comm.Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            else:
                _comm._state.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        bucket.launched = True

    def _finish(self):
        """End of backward: launch what is left (unused parameters count as zero), wait, write back."""
        for b in self._buckets:
            if not b.launched:
                self._launch(b)
        for b in self._buckets:
            if b.request is not None:
                b.request.Wait()
                b.request = None
            for i, p in enumerate(b.params):
                p.grad = Tensor(b.flat[b.offsets[i]:b.offsets[i + 1]].reshape(p._array.shape).copy(), _trusted=True)
            b.ready = 0
            b.launched = False
        object.__setattr__(self, "_pending", False)

    def sync_without_backward(self):
        """For a rank with no samples in a step: joins the gradient average with zeros."""
        for b in self._buckets:
            for p in b.params:
                p.grad = None
        object.__setattr__(self, "_pending", True)
        self._finish()

    def extra_repr(self):
        return f"world_size={_comm.world_size()}, buckets={len(self._buckets)}, overlap={self.overlap}"
