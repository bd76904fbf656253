"""examples/keras_transfer.py runs both tutorial scripts end to end in quick mode on the image folder it
writes; the first model has Keras's parameter count."""
import os
import re
import subprocess
import sys

import pytest

from conftest import child_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_keras_transfer_quick(tmp_path):
    pytest.importorskip("PIL")
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "keras_transfer.py"), "--quick",
                          "--data", str(tmp_path)], capture_output=True, text=True, timeout=600,
                         env=child_env())
    assert out.returncode == 0, out.stderr[-3000:]
    assert "script 1: 3,453,121 parameters" in out.stdout
    accs = [float(a) for a in re.findall(r"test accuracy ([0-9.]+)", out.stdout)]
    assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs), out.stdout
    assert len(os.listdir(tmp_path / "train" / "china")) == 16
