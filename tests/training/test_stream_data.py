"""Sequence-like sources in the training loop: pass boundaries with several workers, PyDataset's own loader
settings, endless PyDatasets."""
import threading
import time

import numpy as np
import pytest

from pyfastnn.keras.utils import PyDataset, Sequence
from pyfastnn.training.data import StreamData


class _Epochs(Sequence):
    """Each batch records which pass made it; on_epoch_end starts the next pass."""

    def __init__(self, n=7):
        self.n, self.epoch, self.begun = n, 0, 0
        self.lock = threading.Lock()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        time.sleep(0.002 * (i % 3))        # uneven work, so workers finish out of order
        x = np.full((2, 1), self.epoch, np.float32)
        return x, np.full((2,), i, np.int64)

    def on_epoch_begin(self):
        self.begun += 1

    def on_epoch_end(self):
        self.epoch += 1


@pytest.mark.parametrize("workers", [1, 3])
def test_no_batch_of_a_pass_sees_the_next_pass(workers):
    src = _Epochs()
    data = StreamData(src, workers=workers, max_queue_size=4)
    try:
        for epoch in range(3):
            batches = list(data.epoch())
            assert [int(y[0]) for _, y, _, _ in batches] == list(range(7))
            assert {float(x[0, 0]) for x, _, _, _ in batches} == {float(epoch)}
    finally:
        data.close()
    assert src.begun >= 3


class _Settings(PyDataset):
    def __init__(self, **kw):
        super().__init__(**kw)

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.ones((1, 2), np.float32), np.zeros((1,), np.int64)


def test_py_dataset_loader_settings_win():
    data = StreamData(_Settings(workers=3, max_queue_size=2), workers=1, max_queue_size=10)
    assert data.workers == 3 and data.max_queue_size == 2
    assert data.steps == 4
    data.close()


class _Endless(PyDataset):
    def __init__(self):
        super().__init__()
        self.calls = []

    @property
    def num_batches(self):
        return None

    def __getitem__(self, i):
        self.calls.append(i)
        return np.full((1, 1), i, np.float32), np.zeros((1,), np.int64)


def test_endless_py_dataset_needs_steps_and_keeps_counting():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        StreamData(_Endless())
    src = _Endless()
    data = StreamData(src, steps=3, max_queue_size=0)
    first = [float(x[0, 0]) for x, _, _, _ in data.epoch()]
    second = [float(x[0, 0]) for x, _, _, _ in data.epoch()]
    assert first == [0, 1, 2] and second == [3, 4, 5]
    data.close()


class _Log(Sequence):
    def __init__(self, n=5):
        self.n, self.log = n, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.log.append(i)
        return np.full((1, 1), i, np.float32), np.zeros((1,), np.int64)

    def on_epoch_end(self):
        self.log.append("E")


@pytest.mark.parametrize("max_queue_size", [0, 4])
def test_sequence_epochs_follow_tf_keras_2(max_queue_size):
    """tf.keras 2 (the API of fit_generator): each epoch starts a fresh pass and takes `steps` batches, then
    on_epoch_end; more steps than a pass wrap into the next one."""
    src = _Log()
    data = StreamData(src, steps=3, max_queue_size=max_queue_size)
    got = [[int(x[0, 0]) for x, _, _, _ in data.epoch()] for _ in range(2)]
    assert got == [[0, 1, 2], [0, 1, 2]]
    assert src.log.count("E") == 2
    src = _Log(n=2)
    data = StreamData(src, steps=3, max_queue_size=max_queue_size)
    assert [int(x[0, 0]) for x, _, _, _ in data.epoch()] == [0, 1, 0]
    assert src.log.count("E") == 2          # between the passes, and at the epoch's end
    data.close()
