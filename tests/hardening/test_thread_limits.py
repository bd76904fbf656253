"""Thread counts the OS will not provide (issue 18, item 3).

set_num_threads(100000) under an address-space limit used to hang: the pool
could not start its threads and the main thread deadlocked in
pthread_cond_destroy. Now the count is bounded (1..1024, a ValueError
otherwise), set_num_threads starts its workers at once and, if the OS refuses
one, raises RuntimeError and keeps the previous setting; a default pool (from
PYFASTNN_NUM_THREADS) that cannot start every thread runs with those that
started. Either way the pool stays usable.

RLIMIT_NPROC does not bind root, so the children limit the address space
(RLIMIT_AS): each thread's stack is a mapping the kernel then refuses.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import PACKAGE_PARENT, child_env

import pyfastnn


# ASan reserves terabytes of address space up front; an RLIMIT_AS child cannot run under it.
needs_plain_build = pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                                       reason="RLIMIT_AS cannot be combined with AddressSanitizer")

_LIMITED = """
import resource, sys
import numpy as np
import pyfastnn
from pyfastnn import ops

rng = np.random.default_rng(0)
A = rng.standard_normal((300, 200)).astype(np.float32)
B = rng.standard_normal((200, 250)).astype(np.float32)
LOGITS, TARGET = rng.standard_normal((4000, 30)).astype(np.float32), rng.integers(0, 30, 4000)

def work():
    return ops.matmul(A, B), ops.cross_entropy(LOGITS, TARGET), ops.softmax(LOGITS)

def same(x, y):
    return all(np.array_equal(a, b) for a, b in zip(x, y))

def limit_address_space(headroom_mib):
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
    lim = vm + headroom_mib * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
"""


def run_child(code, env=None, timeout=60):
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env=child_env(env), cwd=PACKAGE_PARENT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child hung ({timeout}s)\nstdout: {exc.stdout}\nstderr: {exc.stderr}")


@pytest.mark.parametrize("n", [0, -3, 1025, 100000, 2**40, 2**70])
def test_thread_count_out_of_range_is_a_value_error(n):
    before = pyfastnn.get_num_threads()
    with pytest.raises(ValueError) as info:
        pyfastnn.set_num_threads(n)
    assert "set_num_threads" in str(info.value) and "'n'" in str(info.value) and "1024" in str(info.value)
    assert pyfastnn.get_num_threads() == before


@needs_plain_build
def test_set_num_threads_beyond_what_the_os_allows_raises_and_keeps_the_pool():
    out = run_child(_LIMITED + """
pyfastnn.set_num_threads(2)
ref = work()
limit_address_space(200)          # room for a couple dozen thread stacks, not 1000
try:
    pyfastnn.set_num_threads(1000)
    print("no error")
except RuntimeError as e:
    print("RuntimeError:", e)
assert pyfastnn.get_num_threads() == 2, pyfastnn.get_num_threads()
assert all(same(work(), ref) for _ in range(3)), "results changed"
pyfastnn.set_num_threads(1)
assert same(work(), ref)
pyfastnn.set_num_threads(2)
assert same(work(), ref)
print("ok")
""")
    assert out.returncode == 0, out.stderr[-3000:]
    first, last = out.stdout.strip().splitlines()[0], out.stdout.strip().splitlines()[-1]
    assert first.startswith("RuntimeError: set_num_threads: could not start thread"), first
    assert "still using 2 threads" in first
    assert last == "ok"


@needs_plain_build
def test_default_pool_runs_with_the_threads_that_started():
    out = run_child(_LIMITED + """
limit_address_space(200)          # before the first op starts the default pool
got = work()
n = pyfastnn.get_num_threads()
assert 1 <= n < 1000, n
pyfastnn.set_num_threads(1)
assert same(work(), got), "results differ from a 1-thread run"
print("ok", n)
""", env={"PYFASTNN_NUM_THREADS": "1000"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[0] == "ok", out.stdout
