"""pyfastnn.save writes PyTorch's zip format: pyfastnn.load and torch.load(weights_only=True) read it back."""
import collections
import os
import struct
import zipfile

import numpy as np
import pytest

import pyfastnn
from pyfastnn import hub, nn, serialization

rng = np.random.default_rng(0)


def nested():
    w = rng.standard_normal((4, 3)).astype(np.float32)
    return {
        "model": collections.OrderedDict([("w", w), ("b", np.zeros(3, np.float64)), ("steps", np.array(7)),
                                          ("mask", np.array([True, False])), ("ids", np.arange(5, dtype=np.int64)),
                                          ("h", np.ones(2, np.float16)), ("c", np.array([1 + 2j], np.complex64)),
                                          ("u16", np.arange(3, dtype=np.uint16))]),
        "tied": w, "w_t": w.T, "row": w[1],
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones((4, 3), np.float32)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0], "name": None}]},
        "iter_num": 5, "loss": 0.25, "big": 2 ** 70, "neg": -(2 ** 40), "name": "tiny ünïcode", "blob": b"\x00\x01",
        "z": 1 - 1j, "flags": {3, 4}, "np_scalar": np.float32(1.5), "np_int": np.int64(-3),
        "dtype": np.dtype("float32"), "empty": np.zeros((0, 4), np.float32), "tensor": pyfastnn.tensor(w),
    }


def test_round_trip(tmp_path):
    obj = nested()
    path = tmp_path / "ckpt.pt"
    pyfastnn.save(obj, path)
    got = pyfastnn.load(path, keep_dtype="auto")
    assert list(got) == list(obj)
    assert isinstance(got["model"], collections.OrderedDict)
    for k, v in obj["model"].items():
        assert got["model"][k].dtype == v.dtype and got["model"][k].shape == v.shape
        np.testing.assert_array_equal(got["model"][k], v)
    assert got["tied"] is got["model"]["w"]                 # one array saved twice is one array
    assert np.shares_memory(got["w_t"], got["tied"]) and got["w_t"].strides == (4, 12)
    assert np.shares_memory(got["row"], got["tied"])
    np.testing.assert_array_equal(got["tensor"], obj["tensor"].numpy())
    assert got["optimizer"]["param_groups"] == obj["optimizer"]["param_groups"]
    assert got["optimizer"]["state"][0]["step"] == 3
    for k in ("iter_num", "loss", "big", "neg", "name", "blob", "z", "flags"):
        assert got[k] == obj[k] and type(got[k]) is type(obj[k]), k
    assert got["np_scalar"] == 1.5 and type(got["np_scalar"]) is float and got["np_int"] == -3
    assert got["dtype"] == np.dtype("float32") and got["empty"].shape == (0, 4)
    # half types widen to float32 by default
    assert pyfastnn.load(path)["model"]["h"].dtype == np.float32


def test_torch_reads_it_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    obj = nested()
    path = tmp_path / "ckpt.pt"
    pyfastnn.save(obj, path)
    got = torch.load(path, weights_only=True)
    for k, v in obj["model"].items():
        assert got["model"][k].dtype == getattr(torch, v.dtype.name)
        np.testing.assert_array_equal(got["model"][k].numpy(), v)
    assert got["w_t"].stride() == (1, 3) and got["w_t"].untyped_storage().data_ptr() == \
        got["tied"].untyped_storage().data_ptr()
    assert got["tied"] is got["model"]["w"]
    assert got["row"].storage_offset() == 3
    assert got["dtype"] is torch.float32 and got["big"] == 2 ** 70 and got["blob"] == b"\x00\x01"
    assert got["z"] == 1 - 1j and got["flags"] == {3, 4} and got["name"] == "tiny ünïcode"
    assert got["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert got["empty"].shape == (0, 4) and got["model"]["steps"].shape == ()
    # and a torch model takes a state dict pyfastnn wrote
    lin = torch.nn.Linear(3, 2)
    sd = {"weight": rng.standard_normal((2, 3)).astype(np.float32), "bias": np.zeros(2, np.float32)}
    pyfastnn.save(sd, tmp_path / "lin.pt")
    lin.load_state_dict(torch.load(tmp_path / "lin.pt", weights_only=True))
    np.testing.assert_array_equal(lin.weight.detach().numpy(), sd["weight"])


def test_bfloat16_round_trips_through_torch(tmp_path):
    torch = pytest.importorskip("torch")
    ml = pytest.importorskip("ml_dtypes")
    x = rng.standard_normal(5).astype(ml.bfloat16)
    pyfastnn.save({"x": x, "f8": x.astype(ml.float8_e4m3fn)}, tmp_path / "bf.pt")
    got = torch.load(tmp_path / "bf.pt", weights_only=True)
    assert got["x"].dtype == torch.bfloat16 and got["f8"].dtype == torch.float8_e4m3fn
    np.testing.assert_array_equal(got["x"].float().numpy(), x.astype(np.float32))
    back = pyfastnn.load(tmp_path / "bf.pt", keep_dtype=True)
    assert back["x"].dtype == ml.bfloat16 and np.array_equal(back["x"], x)


def test_requires_grad_is_kept_for_torch(tmp_path):
    torch = pytest.importorskip("torch")
    pyfastnn.save({"p": pyfastnn.tensor(np.ones(2, np.float32), requires_grad=True)}, tmp_path / "p.pt")
    assert torch.load(tmp_path / "p.pt", weights_only=True)["p"].requires_grad


def test_records_are_aligned_and_uncompressed(tmp_path):
    path = tmp_path / "a.pt"
    pyfastnn.save({f"w{i}": np.ones(i + 1, np.float32) for i in range(5)}, path)
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[:4] == ["archive/data.pkl", "archive/.format_version", "archive/.storage_alignment",
                             "archive/byteorder"] and names[-1] == "archive/version"
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            n, e = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + n + e) % 64 == 0, info.filename


def test_small_view_of_large_buffer_is_written_alone(tmp_path):
    big = np.zeros(1 << 20, np.float32)
    pyfastnn.save({"head": big[:4]}, tmp_path / "v.pt")
    assert os.path.getsize(tmp_path / "v.pt") < 4096


def test_non_contiguous_and_odd_arrays(tmp_path):
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    obj = {"rev": a[:, ::-1], "fortran": np.asfortranarray(a), "big_endian": a.astype(">f8"),
           "bool0d": np.array(True), "i8": np.arange(-3, 3, dtype=np.int8)}
    pyfastnn.save(obj, tmp_path / "o.pt")
    got = pyfastnn.load(tmp_path / "o.pt")
    for k, v in obj.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype.isnative


def test_whole_objects_need_pickle_true(tmp_path):
    model = nn.Linear(3, 2)
    path = tmp_path / "m.pt"
    with pytest.raises(TypeError, match=r"the object\['m'\] is a pyfastnn.nn.linear.Linear.*pickle=True"):
        pyfastnn.save({"m": model}, path)
    assert not path.exists()
    with pytest.warns(UserWarning, match="weights_only=False"):
        pyfastnn.save({"m": model, "step": 1}, path, pickle=True)
    with pytest.raises(hub.UnsafeCheckpointError, match="pyfastnn.nn.linear.Linear"):
        pyfastnn.load(path)
    again = pyfastnn.load(path, weights_only=False)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(again["m"].predict(x), model.predict(x))
    # a plain state dict with pickle=True is still written weights-only, without a warning
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pyfastnn.save(model.state_dict(), path, pickle=True)
    assert set(pyfastnn.load(path)) == {"weight", "bias"}


def test_unsupported_values_name_their_place(tmp_path):
    for bad, where in [({"f": print}, r"\['f'\]"), ({"a": [1, object()]}, r"\['a'\]\[1\]"),
                       ({"o": np.array(["x", None], dtype=object)}, "dtype object"),
                       ({("k", object()): 1}, "key")]:
        with pytest.raises(TypeError, match=where):
            pyfastnn.save(bad, tmp_path / "x.pt")


def test_unknown_keywords_raise_type_error(tmp_path):
    path = tmp_path / "w.pt"
    pyfastnn.save({"w": np.ones(2)}, path)
    with pytest.raises(TypeError):
        pyfastnn.save({"w": np.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(TypeError):
        pyfastnn.load(path, pickle_module=None)
    with pytest.raises(TypeError):
        pyfastnn.load(path, encoding="latin1")
    with pytest.raises(TypeError):
        hub.load_hf_weights(tmp_path, strict=True)
    with pytest.raises(TypeError, match="weights_only must be a bool"):
        pyfastnn.load(path, weights_only="yes")
    with pytest.raises(TypeError, match="path"):
        pyfastnn.load(open(path, "rb"))


def test_failed_save_leaves_no_file(tmp_path):
    path = tmp_path / "w.pt"
    pyfastnn.save({"w": np.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        pyfastnn.save({"w": object()}, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["w.pt"]


def test_files_from_before_the_zip_format_still_load(tmp_path):
    # pyfastnn.save used to pickle objects directly; state dicts in those files load weights-only
    import pickle
    sd = {"w": rng.standard_normal((2, 3)).astype(np.float32), "n": np.float64(2.5), "i": np.arange(3)}
    for protocol in (2, 4, 5):
        path = tmp_path / f"old{protocol}.pfn"
        path.write_bytes(pickle.dumps(sd, protocol=protocol))
        got = pyfastnn.load(path)
        for k, v in sd.items():
            np.testing.assert_array_equal(got[k], v)
            assert np.asarray(got[k]).dtype == np.asarray(v).dtype
    model = nn.Linear(2, 2)
    path = tmp_path / "old_model.pfn"
    path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    with pytest.raises(hub.UnsafeCheckpointError, match="pyfastnn.nn.linear.Linear"):
        pyfastnn.load(path)
    assert isinstance(serialization.load(path), nn.Linear)


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt", ".bin", ".weights"])
def test_save_weights_formats_round_trip(tmp_path, suffix):
    if suffix in (".safetensors", ".weights"):
        pytest.importorskip("safetensors")
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4) if hasattr(nn, "BatchNorm1d") else nn.ReLU(),
                      nn.Linear(4, 2))
    path = tmp_path / f"w{suffix}"
    m.save_weights(str(path))
    kind = hub.detect_format(path)
    assert kind == {".safetensors": "safetensors", ".npz": "npz", ".pt": "torch-zip", ".bin": "torch-zip",
                    ".weights": "safetensors"}[suffix]
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4) if hasattr(nn, "BatchNorm1d") else nn.ReLU(),
                          nn.Linear(4, 2))
    other.load_weights(str(path))
    for (k, a), (_, b) in zip(m.state_dict().items(), other.state_dict().items()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_save_state_keeps_float16(tmp_path):
    state = {"h": np.arange(4, dtype=np.float16), "f": np.ones(2, np.float32)}
    for name in ("s.npz", "s.pt"):
        serialization.save_state(state, tmp_path / name)
        got = serialization.load_state(tmp_path / name)
        assert got["h"].dtype == np.float16 and np.array_equal(got["h"], state["h"])


def test_data_pkl_names_the_globals_torch_does(tmp_path):
    torch = pytest.importorskip("torch")
    import pickletools
    ours = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, np.float64)}
    pyfastnn.save(ours, tmp_path / "ours.pt")
    torch.save({k: torch.from_numpy(v) for k, v in ours.items()}, tmp_path / "theirs.pt")

    def globals_and_ids(path):
        with zipfile.ZipFile(path) as zf:
            data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
        ops = list(pickletools.genops(data))
        assert ops[0][0].name == "PROTO" and ops[0][1] == 2
        return sorted({arg for op, arg, _ in ops if op.name == "GLOBAL"}), \
            sum(op.name == "BINPERSID" for op, _, _ in ops)

    assert globals_and_ids(tmp_path / "ours.pt") == globals_and_ids(tmp_path / "theirs.pt")
