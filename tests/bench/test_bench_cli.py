"""`python -m pyfastnn.bench` runs end to end and writes what it promises."""
import json
import subprocess
import sys


def test_cli_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "pyfastnn.bench", "--ops", "optim", "--budget", "0.01", "--no-torch",
                          "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "measured fp32 peak" in run.stdout and "memcpy" in run.stdout
    data = json.loads(out.read_text())
    assert data["meta"]["peak_fp32_gflops"] > 0
    rows = data["rows"]
    assert {r["op"] for r in rows} >= {"adam", "rmsprop"}
    for r in rows:
        assert r["pyfastnn_ms"] > 0 and r["gbps"] > 0


def test_cli_rejects_unknown_op():
    run = subprocess.run([sys.executable, "-m", "pyfastnn.bench", "--ops", "fft"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0 and "unknown op" in run.stderr
