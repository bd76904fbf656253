"""What the training loop iterates: batches from arrays (shuffled, sharded across ranks), or from a stream — a
generator, an iterator, a keras.utils.Sequence / PyDataset / directory iterator, a DataLoader — with
steps per epoch honoured exactly and batches prepared in background threads while the kernels train."""
from __future__ import annotations

import collections
import concurrent.futures
import itertools
import queue
import threading
import time
import warnings

import numpy as np

from .. import _device
from .._random import generator
from ..tensor import Tensor

__all__ = ["ArrayData", "StreamData", "as_array", "split_batch", "first_array", "n_samples", "take", "make_data",
           "is_stream"]


def as_array(a, name, where):
    """A host array for one input or target (Tensors, DLPack producers and lists alike); float64 becomes
    float32 and 0-d is refused (it has no batch dimension)."""
    if isinstance(a, Tensor):
        a = a._array
    elif not (isinstance(a, np.ndarray) or _device.is_cupy(a)):
        a = np.from_dlpack(a) if hasattr(a, "__dlpack__") and not isinstance(a, (list, tuple)) else np.asarray(a)
    if a.ndim == 0:
        raise ValueError(f"{where}: argument '{name}' must have a batch dimension, got a scalar")
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return a


def _map(struct, fn):
    """fn applied to each array of a structure (an array, a list/tuple of them, or a dict)."""
    if isinstance(struct, dict):
        return {k: fn(v) for k, v in struct.items()}
    if isinstance(struct, (list, tuple)):
        return type(struct)(fn(v) for v in struct)
    return fn(struct)


def first_array(struct):
    if isinstance(struct, dict):
        return next(iter(struct.values()))
    if isinstance(struct, (list, tuple)):
        return struct[0]
    return struct


def n_samples(struct):
    return len(first_array(struct))


def take(struct, idx):
    return _map(struct, lambda a: a[idx])


def split_batch(batch, where):
    """(x, y, sample_weight) from what a stream yields: a tuple (x,), (x, y) or (x, y, w) — a 2- or 3-list from a
    DataLoader alike — or x alone."""
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3 and not isinstance(batch, np.ndarray):
        items = list(batch) + [None] * (3 - len(batch))
        return items[0], items[1], items[2]
    if isinstance(batch, dict) and ("x" in batch or "inputs" in batch):
        return batch.get("x", batch.get("inputs")), batch.get("y", batch.get("targets")), batch.get("sample_weight")
    return batch, None, None


class ArrayData:
    """Batches of in-memory arrays: shuffled per epoch with the generator manual_seed seeds (the same order on
    every rank), and in a multi-rank job each global batch split across the ranks."""

    def __init__(self, x, y, batch_size, shuffle=True, sample_weight=None, steps=None, where="fit"):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"{where}: batch_size must be a positive int, got {batch_size!r}")
        self.x = _map(x, lambda a: as_array(a, "x", where))
        self.y = None if y is None else _map(y, lambda a: as_array(a, "y", where))
        self.sample_weight = None if sample_weight is None else as_array(sample_weight, "sample_weight", where)
        n = n_samples(self.x)
        for name, struct in (("y", self.y), ("sample_weight", self.sample_weight)):
            if struct is not None:
                for a in (struct.values() if isinstance(struct, dict) else struct if isinstance(struct, (list, tuple))
                          else [struct]):
                    if len(a) != n:
                        raise ValueError(f"{where}: 'x' has {n} samples but '{name}' has {len(a)}")
        self.n, self.batch_size, self.shuffle = n, int(batch_size), shuffle
        self.world, self.rank = 1, 0
        self.steps_limit = steps
        self.wait_seconds = 0.0

    def shard(self, world, rank):
        self.world, self.rank = world, rank

    @property
    def steps(self):
        full = -(-self.n // (self.batch_size * self.world))
        return full if self.steps_limit is None else min(int(self.steps_limit), full) if self.steps_limit else 0

    def epoch(self):
        """Yields (x, y, sample_weight, global batch size) for one epoch; in a multi-rank job this rank's share
        of each global batch (possibly empty for a last batch smaller than the world)."""
        order = generator().permutation(self.n) if self.shuffle else np.arange(self.n)
        step = self.batch_size * self.world
        for s, start in enumerate(range(0, self.n, step)):
            if s >= self.steps:
                return
            gidx = order[start:start + step]
            idx = np.array_split(gidx, self.world)[self.rank] if self.world > 1 else gidx
            yield (take(self.x, idx), None if self.y is None else take(self.y, idx),
                   None if self.sample_weight is None else self.sample_weight[idx], len(gidx))

    def close(self):
        pass


_END = object()


class _Failure:
    def __init__(self, exc):
        self.exc = exc


class _Background:
    """Runs a batch iterator in a background thread, max_queue_size batches ahead, so preparing batches
    (decoding images, augmenting) overlaps the kernels' work; exceptions come through to the consumer."""

    def __init__(self, produce, max_queue_size):
        self.q = queue.Queue(max(1, int(max_queue_size)))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(produce,), daemon=True, name="pyfastnn-data")
        self.thread.start()

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce):
        try:
            for item in produce:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:      # handed to the consumer, which raises it
            self._put(_Failure(exc))
        finally:
            if hasattr(produce, "close"):
                produce.close()           # a generator's worker pool finishes its batches and shuts down

    def __iter__(self):
        return self

    def __next__(self):
        item = self.q.get()
        if item is _END:
            self.q.put(_END)
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item

    def close(self):
        self.stop.set()
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        self.thread.join()


def _ordered_map(fn, indices, workers):
    """fn(i) for each index in order, computed by `workers` threads a few ahead."""
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="pyfastnn-data") as pool:
        pending = collections.deque()
        it = iter(indices)
        for i in it:
            pending.append(pool.submit(fn, i))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(fn, nxt))
            yield result


class StreamData:
    """Batches from a stream. A Sequence-like source (len and indexing: keras.utils.Sequence, PyDataset, a
    flow_from_directory iterator) is read as tf.keras 2 reads it — the API the tutorials are written for:
    each epoch starts a fresh pass (its batches in a random order with shuffle), takes `steps` batches (all
    of them by default; more than a pass wraps into the next, on_epoch_end between), and ends with
    on_epoch_end(). An endless PyDataset is read on across epochs. A generator or iterator is drawn from
    across epochs; one that runs out ends the training with Keras's warning. Any other iterable (a
    DataLoader) is iterated afresh each epoch."""

    def __init__(self, source, steps=None, workers=1, max_queue_size=10, where="fit", shuffle=False):
        self.source, self.where, self.shuffle = source, where, shuffle
        self.steps_limit = None if steps is None else int(steps)
        if self.steps_limit is not None and self.steps_limit < 0:
            raise ValueError(f"{where}: steps must be a non-negative int, got {steps!r}")
        # a PyDataset carries its own loader settings, which win (Keras 3 reads them the same way)
        workers = getattr(source, "workers", workers) if _is_py_dataset(source) else workers
        max_queue_size = getattr(source, "max_queue_size", max_queue_size) if _is_py_dataset(source) \
            else max_queue_size
        self.workers = max(1, int(workers or 1))
        self.max_queue_size = max_queue_size
        self.sequence = hasattr(source, "__getitem__") and (hasattr(source, "__len__") or _is_py_dataset(source)) \
            and not isinstance(source, (list, tuple, np.ndarray, dict))
        self.iterator = hasattr(source, "__next__") and not self.sequence
        self._feed = None
        self.exhausted = False
        self.wait_seconds = 0.0
        if self.sequence:
            length = self._length()
            if length == 0:
                raise ValueError(f"{where}: the data sequence is empty (len 0)")
            if length is None and self.steps_limit is None:
                raise ValueError(f"{where}: {type(source).__name__} is endless (num_batches is None): pass "
                                 f"steps_per_epoch / steps")

    def _length(self):
        """The batches in one pass of a Sequence-like source; None for an endless one."""
        if _is_py_dataset(self.source) and getattr(self.source, "num_batches", 0) is None:
            return None
        return len(self.source)

    @property
    def steps(self):
        if self.steps_limit is not None:
            return self.steps_limit
        if self.sequence:
            return self._length()
        if hasattr(self.source, "__len__"):
            try:
                return len(self.source)
            except TypeError:
                return None
        return None

    def _passes(self, count):
        """The batches of `count` passes (None: endless), one after another: on_epoch_begin before each, on_epoch_end
        between them (the caller ends the last). With several workers a pass is drained before on_epoch_end, so
        no batch of it can see the next pass's shuffle."""
        source, length = self.source, self._length()
        done = 0
        while count is None or done < count:
            if done:
                source_end = getattr(source, "on_epoch_end", None)
                if source_end is not None:
                    source_end()
            if hasattr(source, "on_epoch_begin"):
                source.on_epoch_begin()
            if length is None:
                indices = itertools.count()
            else:
                indices = generator().permutation(length).tolist() if self.shuffle else range(length)
            if self.workers > 1:
                yield from _ordered_map(source.__getitem__, indices, self.workers)
            else:
                for i in indices:
                    yield source[i]
            done += 1

    def _background(self, produce):
        return _Background(produce, self.max_queue_size) if self.max_queue_size else produce

    def epoch(self):
        steps = self.steps
        endless = self.sequence and self._length() is None
        sequence_epoch = self.sequence and not endless
        if sequence_epoch:                       # a fresh pass (or passes) for this epoch
            length = self._length()
            passes = max(1, -(-steps // length)) if steps else 1
            feed = self._background(self._passes(passes))
        elif self.sequence or self.iterator:     # drawn from across epochs
            if self._feed is None:
                self._feed = self._background(self._passes(None) if self.sequence else self.source)
            feed = self._feed
        else:
            feed = iter(self.source)
        count = 0
        try:
            while steps is None or count < steps:
                t0 = time.perf_counter()
                try:
                    batch = next(feed)
                except StopIteration:
                    if self.iterator or steps is None or sequence_epoch:
                        if self.iterator and steps is not None:
                            warnings.warn(f"{self.where}: Your input ran out of data; interrupting training. Make "
                                          f"sure that your dataset or generator can generate at least "
                                          f"`steps_per_epoch * epochs` batches ({steps} per epoch).", UserWarning,
                                          stacklevel=3)
                            self.exhausted = True
                        return
                    feed = iter(self.source)        # a re-iterable source: start it again to fill the steps
                    continue
                finally:
                    self.wait_seconds += time.perf_counter() - t0
                x, y, w = split_batch(batch, self.where)
                count += 1
                yield x, y, w, n_samples(x) if x is not None else 0
        finally:
            if sequence_epoch:
                _stop(feed)                          # joins the producer: no batch is being made any more
                if hasattr(self.source, "on_epoch_end"):
                    self.source.on_epoch_end()

    def close(self):
        _stop(self._feed)
        self._feed = None


def _stop(feed):
    if isinstance(feed, _Background):
        feed.close()
    elif hasattr(feed, "close"):
        feed.close()                                 # a generator: its worker pool finishes and shuts down


def _is_py_dataset(source):
    """A keras.utils.PyDataset (or Keras's own): it declares num_batches and its loader settings."""
    return any(c.__name__ == "PyDataset" for c in type(source).__mro__)


def make_data(x, y, *, batch_size, shuffle, steps, workers, max_queue_size, where, sample_weight=None):
    """ArrayData for arrays (and Tensors, lists and dicts of them), StreamData for everything else."""
    if is_stream(x):
        if y is not None:
            raise ValueError(f"{where}: `y` argument is not supported when using a generator, Sequence or "
                             f"iterator as input (it yields the targets itself)")
        return StreamData(x, steps, workers, max_queue_size, where, shuffle=bool(shuffle))
    if x is None:
        raise ValueError(f"{where}: argument 'x' (the inputs) is required")
    return ArrayData(x, y, 32 if batch_size is None else batch_size, shuffle, sample_weight, steps, where)


def is_stream(x):
    if x is None or isinstance(x, (np.ndarray, Tensor, list, tuple, dict)) or _device.is_cupy(x):
        return False
    if hasattr(x, "__array__") or hasattr(x, "__dlpack__"):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__") or (hasattr(x, "__getitem__") and hasattr(x, "__len__"))
