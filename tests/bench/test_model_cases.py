"""`--ops models` (issue 21's whole-model cases): the quick variant runs end to end, the bench's torch ResNet is
the same network as pyfastnn's, and the FLOP counts the GFLOP/s rest on are right."""
import json
import subprocess
import sys

import numpy as np
import pytest

from pyfastnn import models, nn
from pyfastnn.bench.model_cases import conv_linear_flops, torch_resnet, transformer_flops


def test_quick_models_run_end_to_end(tmp_path):
    out = tmp_path / "models.json"
    run = subprocess.run([sys.executable, "-m", "pyfastnn.bench", "--ops", "models", "--quick", "--budget", "0.01",
                          "--no-torch", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["op"] for r in rows] == ["ResNet tiny inference", "ResNet tiny inference", "ResNet tiny train step",
                                       "BERT tiny inference", "BERT tiny fine-tune step", "GPT-2 tiny train step",
                                       "GPT-2 tiny greedy decode"]
    for r in rows:
        assert r["pyfastnn_ms"] > 0 and (r.get("gflops", 0) > 0 or r.get("gbps", 0) > 0)
    assert rows[-1]["pyfastnn_ms_per_token"] == pytest.approx(rows[-1]["pyfastnn_ms"] / 8)
    assert rows[-2]["pyfastnn_peak_rss_mb"] > 10


def test_quick_is_only_for_models():
    run = subprocess.run([sys.executable, "-m", "pyfastnn.bench", "--ops", "fft", "--quick"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode != 0 and "unknown op" in run.stderr


def test_torch_reference_resnet_is_the_same_network():
    torch = pytest.importorskip("torch")
    model = models.ResNet(models.resnet.Bottleneck, [1, 1, 1, 1], num_classes=7).eval()
    for m in model.modules():           # non-trivial BatchNorm statistics, so eval mode is really compared
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data[...] = np.random.default_rng(0).standard_normal(m.num_features) * 0.1
            m.running_var.data[...] = 1 + np.random.default_rng(1).random(m.num_features)
    tmodel = torch_resnet(torch, [1, 1, 1, 1], 7).eval()
    tmodel.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 3, 35, 29)).astype(np.float32)
    with torch.no_grad():
        want = tmodel(torch.from_numpy(x)).numpy()
    got = model(x).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_flop_counts():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(8 * 5 * 5, 4))
    x = np.zeros((2, 3, 10, 10), np.float32)
    assert conv_linear_flops(net, x) == 2.0 * (2 * 8 * 5 * 5 * 27) + 2.0 * (2 * 4 * 200)
    # a BERT-base layer: 7.08M multiply-adds per token in the projections and MLP, 2 * 128 * 768 in attention
    assert transformer_flops(1, 768, 3072, 1, 128) == 2.0 * (4 * 768 * 768 + 2 * 768 * 3072 + 2 * 128 * 768)
    assert transformer_flops(0, 768, 3072, 3, 0, vocab_out=10) == 2.0 * 3 * 768 * 10
