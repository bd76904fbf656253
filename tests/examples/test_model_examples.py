"""The model-zoo examples run end to end in quick mode (a few optimizer steps): train, save with
save_pretrained / pyfastnn.save, load back, report. Full runs and their metrics: the examples' docstrings."""
import os
import re
import subprocess
import sys

import pytest

from conftest import child_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(script, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), *args], capture_output=True,
                         text=True, timeout=600, env=child_env())
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_gpt2_pydoc_quick(tmp_path):
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    stdout = _run("gpt2_pydoc.py", "--steps", "20", "--out", str(tmp_path))
    final, first = map(float, re.search(r"final held-out loss ([0-9.]+) .*at the start ([0-9.]+)", stdout).groups())
    assert final < first - 0.2, stdout                     # it learns even in 20 steps
    assert stdout.count("--- sample:") == 2
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(tmp_path))


def test_bert_classify_quick(tmp_path):
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    stdout = _run("bert_classify.py", "--steps", "20", "--out", str(tmp_path))
    acc = float(re.search(r"final test accuracy ([0-9.]+)", stdout).group(1))
    assert 0.0 < acc <= 1.0, stdout
    assert re.search(r"-> (asyncio|email|logging|multiprocessing|unittest|xml)\n", stdout), stdout
    with open(os.path.join(tmp_path, "config.json")) as fh:
        assert '"unittest"' in fh.read()                   # the label names travel in config.json


def test_resnet_digits_quick():
    pytest.importorskip("sklearn")
    stdout = _run("resnet_digits.py", "--steps", "20")
    loss = float(re.search(r"epoch 1: train loss ([0-9.]+)", stdout).group(1))
    assert loss < 2.0, stdout                              # from ln(10) = 2.3
    assert "loaded it back" in stdout and "final test accuracy" in stdout
