"""``pyfastnn.utils.data``: torch.utils.data's Dataset, TensorDataset, Subset, ConcatDataset, random_split,
samplers and DataLoader (batching, shuffling, default collation into Tensors; with num_workers > 0 batches
are prepared in background threads while the kernels run, which release the GIL)."""
from __future__ import annotations

import collections
import concurrent.futures
import itertools
import math
import numbers

import numpy as np

from .._random import Generator, generator as _default_rng
from ..tensor import Tensor, _wrap, stack, tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
           "Sampler", "SequentialSampler", "RandomSampler", "BatchSampler", "SubsetRandomSampler", "DataLoader",
           "default_collate", "get_worker_info"]


class Dataset:
    """A map-style dataset: __getitem__(index) and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: __getitem__ is not implemented")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is iterated rather than indexed."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}: __iter__ is not implemented")


class TensorDataset(Dataset):
    """Samples are the i-th rows of each tensor (all of the same first size)."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"TensorDataset: size mismatch between tensors ({[len(t) for t in tensors]})")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("ConcatDataset: absolute value of index should not exceed dataset length")
            idx += len(self)
        d = int(np.searchsorted(self.cumulative_sizes, idx, side="right"))
        start = self.cumulative_sizes[d - 1] if d else 0
        return self.datasets[d][idx - start]


def _rng(gen):
    if gen is None:
        return _default_rng()
    return gen._rng if isinstance(gen, Generator) else gen


def random_split(dataset, lengths, generator=None):
    """Splits a dataset into non-overlapping random subsets of the given lengths (or fractions summing to 1)."""
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1 + 1e-9:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length of the "
                         f"input dataset ({n})")
    order = _rng(generator).permutation(n).tolist()
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, order[start:start + length]))
        start += length
    return out


class Sampler:
    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement, self.generator = data_source, replacement, generator
        self._num_samples = num_samples

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        rng = _rng(self.generator)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        order = np.concatenate([rng.permutation(n) for _ in range(max(1, -(-self.num_samples // max(n, 1))))])
        return iter(order[:self.num_samples].tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    def __init__(self, indices, generator=None):
        self.indices, self.generator = list(indices), generator

    def __iter__(self):
        return iter([self.indices[i] for i in _rng(self.generator).permutation(len(self.indices))])

    def __len__(self):
        return len(self.indices)


class BatchSampler(Sampler):
    def __init__(self, sampler, batch_size, drop_last):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def default_collate(batch):
    """Stacks a list of samples into a batch, recursing into tuples, lists and dicts like torch's: Tensors and
    numpy arrays are stacked, numbers become a 1-D tensor, strings stay a list."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        return _wrap(np.stack(batch, 0))
    if isinstance(elem, np.generic):
        return _wrap(np.asarray(batch))
    if isinstance(elem, bool):
        return tensor(batch)
    if isinstance(elem, numbers.Integral):
        return tensor(batch)
    if isinstance(elem, numbers.Real):
        return _wrap(np.asarray(batch, np.float64))     # torch: Python floats collate to float64
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return type(elem)({k: default_collate([d[k] for d in batch]) for k in elem}) \
            if not isinstance(elem, collections.OrderedDict) else collections.OrderedDict(
                (k, default_collate([d[k] for d in batch])) for k in elem)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(s) != len(elem) for s in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        collated = [default_collate(list(s)) for s in zip(*batch)]
        return tuple(collated) if isinstance(elem, tuple) else collated
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
                    f"{type(elem).__name__}")


def get_worker_info():
    return None


class DataLoader:
    """Batches of a dataset, as torch.utils.data.DataLoader: batch_size, shuffle, sampler, batch_sampler,
    drop_last, collate_fn, generator. num_workers > 0 prepares up to prefetch_factor * num_workers batches in
    background threads (not processes: the kernels release the GIL, and nothing needs pickling)."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative; got {num_workers!r}")
        self.dataset, self.num_workers = dataset, num_workers
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
        self.generator, self.drop_last = generator, drop_last
        self._iterable = isinstance(dataset, IterableDataset)
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            self.batch_size = None
        else:
            if sampler is not None and shuffle:
                raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
            if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                           or batch_size <= 0):
                raise ValueError(f"DataLoader: batch_size should be a positive integer value, but got "
                                 f"batch_size={batch_size!r}")
            self.batch_size = batch_size
            if not self._iterable:
                if sampler is None:
                    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
                if batch_size is not None:
                    batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.sampler, self.batch_sampler = sampler, batch_sampler

    def _batches(self):
        if self._iterable:
            it = iter(self.dataset)
            if self.batch_size is None:
                yield from it
                return
            while True:
                chunk = list(itertools.islice(it, self.batch_size))
                if not chunk or (self.drop_last and len(chunk) < self.batch_size):
                    return
                yield self.collate_fn(chunk)
        elif self.batch_sampler is None:
            for i in self.sampler:
                yield self.collate_fn(self.dataset[i]) if self.collate_fn is not default_collate else \
                    self.dataset[i]
        elif self.num_workers == 0:
            for indices in self.batch_sampler:
                yield self.collate_fn([self.dataset[i] for i in indices])
        else:
            yield from self._threaded()

    def _threaded(self):
        depth = max(1, self.num_workers * self.prefetch_factor)
        with concurrent.futures.ThreadPoolExecutor(self.num_workers, thread_name_prefix="pyfastnn-loader") as pool:
            pending = collections.deque()
            indices_iter = iter(self.batch_sampler)
            for indices in itertools.islice(indices_iter, depth):
                pending.append(pool.submit(self._make_batch, indices))
            while pending:
                batch = pending.popleft().result()
                nxt = next(indices_iter, None)
                if nxt is not None:
                    pending.append(pool.submit(self._make_batch, nxt))
                yield batch

    def _make_batch(self, indices):
        return self.collate_fn([self.dataset[i] for i in indices])

    def __iter__(self):
        return self._batches()

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.sampler)
