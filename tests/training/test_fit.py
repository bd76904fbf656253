"""Keras-style training on Modules: compile/fit/evaluate/predict, callbacks, weights I/O."""
import os
import pickle

import numpy as np
import pytest

import pyfastnn
from pyfastnn import nn
from pyfastnn import serialization
from conftest import cupy_or_skip


def blobs(n=240, classes=3, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, dim))
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(0, 1, (n, dim))).astype(np.float32)
    return x, y.astype(np.int64)


def mlp(dim=5, classes=3, dropout=0.0):
    return nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, classes))


def test_fit_learns_and_reports_history():
    pyfastnn.manual_seed(0)
    x, y = blobs()
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=15, batch_size=32, validation_data=(x[:60], y[:60]), verbose=0)
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 for v in hist.values())
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["accuracy"][-1] > 0.9
    res = model.evaluate(x, y)
    # evaluate's loss is the mean cross entropy of predict's logits
    logits = model.predict(x)
    ref = -(logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
            - logits.max(1, keepdims=True))[np.arange(len(y)), y].mean()
    assert res["loss"] == pytest.approx(ref, rel=1e-4)
    assert res["accuracy"] == pytest.approx((logits.argmax(1) == y).mean())


def test_fit_matches_a_hand_written_loop():
    """fit without shuffling = the plain zero_grad/backward/step loop, bit for bit."""
    x, y = blobs(n=100)
    pyfastnn.manual_seed(3)
    a = mlp()
    pyfastnn.manual_seed(3)
    b = mlp()
    a.compile(optimizer=pyfastnn.optim.SGD(a.parameters(), lr=0.05, momentum=0.9), loss="cross_entropy")
    hist = a.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    opt = pyfastnn.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(2):
        total = 0.0
        for i in range(0, 100, 16):
            loss = nn.functional.cross_entropy(b(x[i:i + 16]), y[i:i + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x[i:i + 16])
        losses.append(total / 100)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    np.testing.assert_allclose(hist["loss"], losses, rtol=1e-6)


def test_seeded_runs_repeat_exactly():
    x, y = blobs()
    runs = []
    for _ in range(2):
        pyfastnn.manual_seed(7)
        m = mlp(dropout=0.3)
        m.compile("adam", "sparse_categorical_crossentropy")
        runs.append((m.fit(x, y, epochs=3, verbose=0)["loss"], m.predict(x)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_predict_uses_eval_mode_and_restores_training():
    x, _ = blobs(n=50)
    m = mlp(dropout=0.5)
    m.train()
    p1, p2 = m.predict(x), m.predict(x)
    np.testing.assert_array_equal(p1, p2)          # dropout off in predict
    assert m.training                               # and the mode restored
    assert p1.shape == (50, 3) and p1.dtype == np.float32


def test_binary_classifier_with_sigmoid_and_metrics():
    pyfastnn.manual_seed(1)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    x = (rng.normal(0, 1, (300, 5)) + np.where(y[:, None] == 1, 1.5, -1.5)).astype(np.float32)
    m = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    m.compile("adam", "binary_crossentropy", metrics=["accuracy", "precision", "recall", "f1", "auc"])
    hist = m.fit(x, y, epochs=10, batch_size=32, verbose=0)
    for k in ("accuracy", "precision", "recall", "f1", "auc"):
        assert 0.9 < hist[k][-1] <= 1.0, (k, hist[k])
    out = m.evaluate(x, y)
    assert out["accuracy"] > 0.9


def test_regression_with_mse():
    pyfastnn.manual_seed(2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)
    m = nn.Linear(3, 1)
    m.compile(pyfastnn.optim.SGD(m.parameters(), lr=0.1), "mse")
    hist = m.fit(x, y, epochs=30, batch_size=20, verbose=0)
    assert hist["loss"][-1] < 1e-3
    np.testing.assert_allclose(m.weight.numpy().ravel(), [1.0, -2.0, 0.5], atol=0.02)


def test_progress_output_modes(capsys):
    x, y = blobs(n=64)
    m = mlp()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert capsys.readouterr().out == ""
    for verbose in (1, 2):      # not a terminal: one line per epoch, no carriage returns
        m.fit(x, y, epochs=2, batch_size=16, verbose=verbose)
        out = capsys.readouterr().out
        lines = out.strip().splitlines()
        assert len(lines) == 2 and "\r" not in out
        assert lines[0].startswith("Epoch 1/2 - 4/4") and "loss: " in lines[0] and "accuracy: " in lines[0]


def test_early_stopping_and_restore_best():
    pyfastnn.manual_seed(0)
    x, y = blobs()
    m = mlp()
    m.compile(pyfastnn.optim.SGD(m.parameters(), lr=0.0), "sparse_categorical_crossentropy")   # lr 0: no progress
    stop = pyfastnn.callbacks.EarlyStopping(monitor="loss", patience=2)
    # shuffle off: with lr 0 each epoch's loss is then the same bits; shuffled batches sum the same per-sample
    # losses in another order, and a last-bit drop counts as an improvement (min_delta 0, as Keras)
    hist = m.fit(x, y, epochs=20, callbacks=[stop], verbose=0, shuffle=False)
    assert len(hist["loss"]) == 3 and stop.stopped_epoch == 2
    with pytest.raises(KeyError, match="val_loss"):
        m.fit(x, y, epochs=2, callbacks=[pyfastnn.callbacks.EarlyStopping()], verbose=0)


def test_model_checkpoint(tmp_path):
    x, y = blobs(n=64)
    m = mlp()
    m.compile("adam", "sparse_categorical_crossentropy")
    path = str(tmp_path / "w-{epoch:02d}-{loss:.3f}.npz")
    m.fit(x, y, epochs=2, callbacks=[pyfastnn.callbacks.ModelCheckpoint(path, monitor="loss")], verbose=0)
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2 and files[0].startswith("w-01-")
    fresh = mlp()
    fresh.load_weights(str(tmp_path / files[1]))
    np.testing.assert_array_equal(fresh.predict(x), m.predict(x))


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_weights_round_trip_exactly(tmp_path, fmt, monkeypatch):
    if fmt == "safetensors":
        pytest.importorskip("safetensors")
    else:
        monkeypatch.setattr(serialization, "_have_safetensors", lambda: False)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    m.train()
    m(np.random.default_rng(0).normal(size=(3, 1, 6, 6)).astype(np.float32))   # move the running stats
    path = str(tmp_path / f"weights.{fmt}")
    m.save_weights(path)
    other = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    other.load_weights(path)
    for (k, a), (k2, b) in zip(m.state_dict().items(), other.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_whole_model_save_load(tmp_path):
    x, y = blobs(n=40)
    m = mlp()
    path = tmp_path / "model.pfn"
    with pytest.raises(TypeError, match="pickle=True"):      # a whole Module is an explicit opt-in
        pyfastnn.save(m, path)
    with pytest.warns(UserWarning, match="weights_only=False"):
        pyfastnn.save(m, path, pickle=True)
    with pytest.raises(pickle.UnpicklingError, match="weights_only=False"):   # safe by default
        pyfastnn.load(path)
    again = pyfastnn.load(path, weights_only=False)
    np.testing.assert_array_equal(again.predict(x), m.predict(x))


def test_bad_names_and_inputs_raise_clearly():
    x, y = blobs(n=20)
    m = mlp()
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        m.compile("adamax", "mse")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        m.compile("adam", "hinge")
    with pytest.raises(ValueError, match="unknown metric 'top5'"):
        m.compile("adam", "mse", ["top5"])
    with pytest.raises(RuntimeError, match="compile"):
        mlp().fit(x, y, verbose=0)
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="'x' has 20 samples but 'y' has 19"):
        m.fit(x, y[:19], verbose=0)
    with pytest.raises(ValueError, match="Linear"):
        m.fit(x[:, :4], y, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(x, y, batch_size=0, verbose=0)


def test_fit_on_the_gpu_matches_the_cpu():
    """A model moved to the GPU trains there (fit moves each batch); same history as on the CPU."""
    cupy_or_skip()
    x, y = blobs()
    hists = []
    for device in ("cpu", "cuda"):
        pyfastnn.manual_seed(0)
        model = mlp().to(device)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        hists.append(model.fit(x, y, epochs=3, batch_size=32, shuffle=False, validation_data=(x[:60], y[:60]),
                               verbose=0))
        assert next(iter(model.parameters())).device == device
        assert isinstance(model.predict(x[:7]), np.ndarray)
    for key in hists[0]:
        np.testing.assert_allclose(hists[1][key], hists[0][key], rtol=1e-4, err_msg=key)
