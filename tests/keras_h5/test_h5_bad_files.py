"""Bad Keras weight files: another architecture, truncated or damaged HDF5, a non-HDF5 file named .h5, a missing
file, h5py missing. Each is a clear error naming the file (and the layer, where one is at fault), and the model
is left exactly as it was: nothing is half-loaded."""
import sys

import numpy as np
import pytest

from h5_helpers import assert_weights_equal, pk, randomize, weights_of
from pyfastnn.hub import CheckpointError
from pyfastnn.keras.saving import keras3 as keras3_format
from pyfastnn.keras.saving import load_weights_h5, save_weights_h5

h5py = pytest.importorskip("h5py")

FORMATS = [".weights.h5", ".h5"]


def mlp(widths=(5, 3, 2), in_dim=4):
    L = pk.layers
    return pk.Sequential([pk.Input((in_dim,))] + [L.Dense(w) for w in widths])


def cnn():
    L = pk.layers
    return pk.Sequential([pk.Input((6, 6, 2)), L.Conv2D(3, 3), L.BatchNormalization(), L.Flatten(), L.Dense(2)])


def saved(tmp_path, model, suffix, name="src"):
    path = tmp_path / f"{name}{suffix}"
    save_weights_h5(randomize(model, 1), path)
    return path


def assert_refused(model, path, exc, *words, **kwargs):
    """Loading raises exc naming the file and each word, and leaves every weight as it was."""
    before = weights_of(model)
    with pytest.raises(exc) as info:
        load_weights_h5(model, path, **kwargs)
    msg = str(info.value)
    for word in (str(path),) + words:
        assert word in msg, (word, msg)
    assert_weights_equal(weights_of(model), before)
    return msg


# ------------------------------------------------------------------------------ another architecture
@pytest.mark.parametrize("suffix", FORMATS)
def test_last_layer_shape_differs(tmp_path, suffix):
    path = saved(tmp_path, mlp((5, 3, 2)), suffix)
    target = randomize(mlp((5, 3, 7)), 2)     # the first two layers fit: a naive loader would write them
    last = target.layers[-1].name
    msg = assert_refused(target, path, ValueError, f"'{last}'", "(3, 7)", "(3, 2)")
    assert "Nothing was loaded" in msg


@pytest.mark.parametrize("suffix", FORMATS)
def test_model_has_more_layers(tmp_path, suffix):
    path = saved(tmp_path, mlp((5, 3)), suffix)
    target = randomize(mlp((5, 3, 2)), 2)
    last = target.layers[-1].name
    words = [f"'{last}'", "no group"] if suffix == ".weights.h5" else ["layer count mismatch", last]
    assert_refused(target, path, ValueError, *words)


@pytest.mark.parametrize("suffix", FORMATS)
def test_model_has_fewer_layers(tmp_path, suffix):
    path = saved(tmp_path, mlp((5, 3, 2)), suffix)
    target = randomize(mlp((5, 3)), 2)
    words = ["layers/dense_2/vars"] if suffix == ".weights.h5" else ["layer count mismatch"]
    assert_refused(target, path, ValueError, *words)


@pytest.mark.parametrize("suffix", FORMATS)
def test_other_layer_types(tmp_path, suffix):
    path = saved(tmp_path, cnn(), suffix)
    target = randomize(mlp((5, 3, 2), in_dim=72), 2)
    assert_refused(target, path, ValueError, "does not fit this model")


def test_weight_count_differs_in_legacy_file(tmp_path):
    L = pk.layers
    path = saved(tmp_path, pk.Sequential([pk.Input((4,)), L.Dense(3), L.Dense(2, use_bias=False)]), ".h5")
    target = randomize(mlp((3, 2)), 2)
    assert_refused(target, path, ValueError, f"'{target.layers[-1].name}'", "expects 2 weight(s)", "holds 1")


def test_skip_mismatch_still_loads_nothing_that_does_not_fit(tmp_path):
    path = saved(tmp_path, mlp((5, 3, 2)), ".weights.h5")
    target = randomize(mlp((5, 4, 2)), 2)
    kept = target.layers[1].get_weights()
    with pytest.warns(UserWarning, match=str(path)):
        load_weights_h5(target, path, skip_mismatch=True)
    assert_weights_equal(target.layers[1].get_weights(), kept)


# ------------------------------------------------------------------------------ damaged files
@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_file(tmp_path, suffix, keep):
    path = saved(tmp_path, cnn(), suffix)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    assert_refused(randomize(cnn(), 2), path, CheckpointError, "truncated or corrupted")


@pytest.mark.parametrize("suffix", FORMATS)
def test_damaged_metadata(tmp_path, suffix):
    path = saved(tmp_path, cnn(), suffix)
    data = bytearray(path.read_bytes())
    data[100:164] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    assert_refused(randomize(cnn(), 2), path, CheckpointError, "truncated or corrupted")


def test_legacy_file_listing_a_missing_layer(tmp_path):
    path = saved(tmp_path, mlp(), ".h5")
    with h5py.File(path, "a") as f:
        del f[mlp_name := f.attrs["layer_names"][1].decode()]
    assert_refused(randomize(mlp(), 2), path, CheckpointError, f"'{mlp_name}'", "damaged")


def test_keras3_group_with_stray_entries(tmp_path):
    path = saved(tmp_path, mlp(), ".weights.h5")
    with h5py.File(path, "a") as f:
        f["layers/dense_1/vars/extra"] = np.zeros(3, np.float32)
    assert_refused(randomize(mlp(), 2), path, ValueError, "layers/dense_1/vars", "extra")


def test_non_numeric_dataset(tmp_path):
    path = saved(tmp_path, mlp(), ".weights.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = np.array([b"a", b"b", b"c", b"d", b"e"])
    assert_refused(randomize(mlp(), 2), path, ValueError, "non-numeric")


# ------------------------------------------------------------------------------ not an HDF5 weights file
@pytest.mark.parametrize("content,words", [(b"just some text\n" * 20, ["not an HDF5 file"]),
                                           (b"", ["not an HDF5 file", "empty"]),
                                           (b"PK\x03\x04" + b"\0" * 60, ["not an HDF5 file", "zip"])])
@pytest.mark.parametrize("suffix", FORMATS)
def test_not_hdf5(tmp_path, content, words, suffix):
    path = tmp_path / f"fake{suffix}"
    path.write_bytes(content)
    assert_refused(randomize(mlp(), 2), path, CheckpointError, *words)


def test_hdf5_but_not_keras_weights(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 3), np.float32)
    assert_refused(randomize(mlp(), 2), path, CheckpointError, "not Keras weights", "images")


def test_missing_file(tmp_path):
    assert_refused(mlp(), tmp_path / "nowhere.weights.h5", FileNotFoundError, "no such file")
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        mlp().load_weights(str(tmp_path / "nowhere.weights.h5"))


def test_directory(tmp_path):
    d = tmp_path / "dir.h5"
    d.mkdir()
    assert_refused(mlp(), d, IsADirectoryError, "directory")


# ------------------------------------------------------------------------------ h5py missing
def test_without_h5py(tmp_path, monkeypatch):
    path = saved(tmp_path, mlp(), ".weights.h5")
    monkeypatch.setitem(sys.modules, "h5py", None)
    for call in (lambda: load_weights_h5(mlp(), path), lambda: save_weights_h5(mlp(), tmp_path / "o.weights.h5"),
                 lambda: mlp().save_weights(str(tmp_path / "o.h5"))):
        with pytest.raises(ImportError, match=r"h5py.*pip install \"pyfastnn\[keras\]\""):
            call()
    assert not (tmp_path / "o.weights.h5").exists()


# ------------------------------------------------------------------------------ arguments and writing
def test_argument_errors(tmp_path):
    path = saved(tmp_path, mlp(), ".weights.h5")
    with pytest.raises(TypeError, match="load_weights_h5.*'model'.*Dense"):
        load_weights_h5(pk.layers.Dense(2), path)
    with pytest.raises(TypeError, match="load_weights_h5.*'filepath'.*int"):
        load_weights_h5(mlp(), 3)
    with pytest.raises(TypeError, match="load_weights_h5.*'skip_mismatch'.*str"):
        load_weights_h5(mlp(), path, skip_mismatch="yes")
    with pytest.raises(TypeError, match="load_weights_h5.*'by_name'.*int"):
        load_weights_h5(mlp(), path, by_name=1)
    lazy = pk.Sequential([pk.layers.Dense(2)])
    with pytest.raises(ValueError, match="load_weights_h5.*not yet been built"):
        load_weights_h5(lazy, path)
    with pytest.raises(ValueError, match="save_weights_h5.*not yet been built"):
        save_weights_h5(lazy, tmp_path / "lazy.weights.h5")
    with pytest.raises(ValueError, match="save_weights_h5.*'.weights.h5'.*w.txt"):
        save_weights_h5(mlp(), tmp_path / "w.txt")
    with pytest.raises(FileNotFoundError, match="save_weights_h5.*folder"):
        save_weights_h5(mlp(), tmp_path / "no" / "such" / "w.weights.h5")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        mlp().save_weights(str(path), overwrite=False)


def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = saved(tmp_path, mlp(), ".weights.h5")
    before = path.read_bytes()

    def broken(model, f):
        f["layers/partial"] = np.zeros(3)
        raise RuntimeError("disk full")
    monkeypatch.setattr(keras3_format, "save", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_weights_h5(mlp(), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
