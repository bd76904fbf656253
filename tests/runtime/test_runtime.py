"""Dispatch, threads, fork safety and concurrent callers."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import pyfastnn
from pyfastnn import ops


def test_backend_info_reports_everything():
    info = pyfastnn.backend_info()
    assert info["cpu_isa"] in ("scalar", "avx2", "avx512")
    assert info["num_threads"] == pyfastnn.get_num_threads() >= 1
    assert isinstance(info["cuda_built"], bool)
    if not info["cuda_available"]:
        assert info["cuda_error"], "a missing CUDA backend must say why"


def test_num_threads_setting():
    before = pyfastnn.get_num_threads()
    try:
        pyfastnn.set_num_threads(3)
        assert pyfastnn.get_num_threads() == 3
    finally:
        pyfastnn.set_num_threads(before)
    with pytest.raises(ValueError, match="set_num_threads.*'n'"):
        pyfastnn.set_num_threads(0)
    with pytest.raises(TypeError, match="set_num_threads.*'n'"):
        pyfastnn.set_num_threads(2.5)


def run_python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120)


def test_env_variables_are_read_at_import():
    out = run_python("import pyfastnn; i = pyfastnn.backend_info(); print(i['cpu_isa'], i['num_threads'])",
                     PYFASTNN_CPU_ISA="scalar", PYFASTNN_NUM_THREADS="3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["scalar", "3"]


def test_bad_isa_override_warns_and_falls_back():
    out = run_python("import warnings; warnings.simplefilter('always'); import pyfastnn; "
                     "print(pyfastnn.backend_info()['cpu_isa'])", PYFASTNN_CPU_ISA="sse9")
    assert out.returncode == 0, out.stderr
    assert "PYFASTNN_CPU_ISA" in out.stderr
    assert out.stdout.strip() in ("scalar", "avx2", "avx512")


def test_default_threads_is_physical_cores():
    env = {k: v for k, v in os.environ.items() if k != "PYFASTNN_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", "import pyfastnn; i = pyfastnn.backend_info(); "
                          "print(i['num_threads'], i['cpu_physical_cores'])"],
                         env=env, capture_output=True, text=True, timeout=120)
    threads, cores = out.stdout.split()
    assert threads == cores


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_after_use_does_not_deadlock():
    code = """
import os, numpy as np, pyfastnn
from pyfastnn import ops
pyfastnn.set_num_threads(2)
a = np.random.rand(300, 300).astype(np.float32)
ref = ops.matmul(a, a)
pid = os.fork()
if pid == 0:
    ok = np.array_equal(ops.matmul(a, a), ref)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert np.array_equal(ops.matmul(a, a), ref)
print("ok")
"""
    out = run_python(code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_concurrent_python_threads_get_serial_results():
    rng = np.random.default_rng()
    mats = [rng.standard_normal((150 + i, 170)).astype(np.float32) for i in range(4)]
    w = rng.standard_normal((170, 130)).astype(np.float32)
    serial = [ops.matmul(m, w, activation="gelu") for m in mats]
    results = [[None] * 4 for _ in range(4)]

    def worker(t):
        for rep in range(4):
            results[t][rep] = ops.matmul(mats[t], w, activation="gelu")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in range(4):
        for rep in range(4):
            np.testing.assert_array_equal(results[t][rep], serial[t])


def test_gil_released_during_long_call():
    # While a big GEMM runs, another Python thread must keep making progress.
    a = np.random.rand(1500, 1500).astype(np.float32)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        for _ in range(3):
            ops.matmul(a, a)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 100


def test_allocator_tuning_reported_and_can_be_turned_off():
    code = "import pyfastnn, json; print(json.dumps(pyfastnn._backend.allocator))"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYFASTNN_MALLOC_TUNING": "0"})
    on, off = json.loads(on.stdout), json.loads(off.stdout)
    assert off == {"applied": False, "mmap_threshold": 0, "trim_threshold": 0}
    if sys.platform.startswith("linux") and on["applied"]:
        assert on["mmap_threshold"] == 64 << 20 and on["trim_threshold"] == 256 << 20
    assert "allocator_tuned" in pyfastnn.backend_info()


def test_use_deterministic_switch():
    before = pyfastnn.is_deterministic()
    try:
        pyfastnn.use_deterministic(True)
        assert pyfastnn.is_deterministic() is True
        pyfastnn.use_deterministic(False)
        assert pyfastnn.is_deterministic() is False
        with pytest.raises(TypeError, match="use_deterministic.*'mode'"):
            pyfastnn.use_deterministic("yes")
    finally:
        pyfastnn.use_deterministic(before)
