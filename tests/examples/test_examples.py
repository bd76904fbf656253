"""The README's demo must keep working: run it short and check that it learns."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_digits_mlp_learns():
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "digits_mlp.py"), "--epochs", "15"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    acc = float(re.search(r"final test accuracy ([0-9.]+)", out.stdout).group(1))
    assert acc > 0.85, out.stdout   # chance is 0.10
