"""Checkpoints written by torch.save (zip and legacy formats) load into numpy equal to torch's values."""
import collections
import io
import zipfile

import numpy as np
import pytest

import pyfastnn
from pyfastnn import hub, serialization

torch = pytest.importorskip("torch")

FORMATS = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}


def as_numpy(t):
    """torch's value as numpy, half types widened to float32 as pyfastnn.load does by default."""
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.detach().numpy()


def save(obj, path, fmt):
    torch.save(obj, path, **FORMATS[fmt])
    return path


def assert_same(got, ref):
    """got (numpy structure) equals ref (torch structure), entry by entry."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(got, np.ndarray), type(got)
        want = as_numpy(ref)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    elif isinstance(ref, dict):
        assert type(got) is type(ref) and list(got) == list(ref)
        for k in ref:
            assert_same(got[k], ref[k])
    elif isinstance(ref, (list, tuple)):
        assert type(got) is type(ref) and len(got) == len(ref)
        for a, b in zip(got, ref):
            assert_same(a, b)
    else:
        assert got == ref and type(got) is type(ref)


def every_dtype():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, generator=g)
    return collections.OrderedDict([
        ("f32", x), ("f64", x.double()), ("f16", x.half()), ("bf16", x.bfloat16()),
        ("i64", torch.arange(-5, 7).reshape(3, 4)), ("i32", torch.arange(6, dtype=torch.int32)),
        ("i16", torch.arange(4, dtype=torch.int16)), ("i8", torch.tensor([-128, 0, 127], dtype=torch.int8)),
        ("u8", torch.tensor([0, 255], dtype=torch.uint8)), ("bool", torch.tensor([True, False, True])),
        ("c64", torch.complex(x, -x)), ("scalar", torch.tensor(3.5)), ("empty", torch.zeros(0, 3)),
        ("int_scalar", torch.tensor(7)),
    ])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_dtype_loads_equal(tmp_path, fmt):
    sd = every_dtype()
    got = pyfastnn.load(save(sd, tmp_path / "sd.pt", fmt))
    assert_same(got, sd)
    assert got["scalar"].shape == () and got["bf16"].dtype == np.float32 and got["f16"].dtype == np.float32


def test_new_dtypes_saved_untyped_load(tmp_path):
    sd = {"u16": torch.arange(5).to(torch.uint16), "u32": torch.arange(5).to(torch.uint32),
          "u64": torch.tensor([0, 2 ** 63 + 5], dtype=torch.uint64)}
    got = pyfastnn.load(save(sd, tmp_path / "u.pt", "zip"))
    np.testing.assert_array_equal(got["u16"], np.arange(5, dtype=np.uint16))
    assert got["u32"].dtype == np.uint32 and got["u64"][1] == 2 ** 63 + 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_keep_dtype(tmp_path, fmt):
    ml = pytest.importorskip("ml_dtypes")
    sd = every_dtype()
    got = pyfastnn.load(save(sd, tmp_path / "sd.pt", fmt), keep_dtype=True)
    assert got["f16"].dtype == np.float16
    np.testing.assert_array_equal(got["f16"], sd["f16"].numpy())
    assert got["bf16"].dtype == ml.bfloat16
    np.testing.assert_array_equal(got["bf16"].astype(np.float32), sd["bf16"].float().numpy())


def test_float8_widens(tmp_path):
    x = torch.tensor([0.0, -1.5, 2.0 ** -9, 448.0, -0.01, 3.14, float("nan")])
    sd = {"e4m3": x.to(torch.float8_e4m3fn), "e5m2": x.to(torch.float8_e5m2)}
    got = pyfastnn.load(save(sd, tmp_path / "f8.pt", "zip"))
    for k in sd:
        np.testing.assert_array_equal(got[k], sd[k].float().numpy())


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_keep_layout_and_share_memory(tmp_path, fmt):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {"base": base, "t": base.t(), "row": base[2], "col": base[:, 3], "step": base[::2, 1::3],
          "expanded": torch.arange(3.0).expand(4, 3), "same": base}
    got = pyfastnn.load(save(sd, tmp_path / "v.pt", fmt))
    assert_same(got, sd)
    assert got["t"].strides == (4, 24) and not got["t"].flags.c_contiguous
    for k in ("t", "row", "col", "step", "same"):
        assert np.shares_memory(got[k], got["base"]), k
    assert got["same"] is got["base"]       # one tensor saved twice is one array
    got["base"][2, 3] = -1.0                # shared storage stays shared, as in torch
    assert got["row"][3] == -1.0 and got["col"][2] == -1.0 and got["t"][3, 2] == -1.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_shared_half_storage_stays_shared_after_widening(tmp_path, fmt):
    base = torch.randn(4, 4).half()
    got = pyfastnn.load(save({"a": base, "b": base[1:3, ::2]}, tmp_path / "h.pt", fmt))
    assert got["a"].dtype == np.float32 and np.shares_memory(got["a"], got["b"])
    np.testing.assert_array_equal(got["b"], base[1:3, ::2].float().numpy())


@pytest.mark.parametrize("fmt", FORMATS)
def test_module_state_dict_with_parameters_and_metadata(tmp_path, fmt):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                                torch.nn.Linear(12, 4))
    model(torch.randn(2, 2, 4, 4))
    sd = model.state_dict()
    got = pyfastnn.load(save(sd, tmp_path / "m.pt", fmt))
    assert_same(got, sd)
    assert isinstance(got, collections.OrderedDict) and got._metadata == sd._metadata
    assert got["1.num_batches_tracked"].dtype == np.int64
    # parameters themselves (torch.nn.Parameter) in a plain dict
    params = dict(model.named_parameters())
    assert_same(pyfastnn.load(save(params, tmp_path / "p.pt", fmt)), {k: v.detach() for k, v in params.items()})


@pytest.mark.parametrize("fmt", FORMATS)
def test_optimizer_state_and_training_checkpoint(tmp_path, fmt):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    for _ in range(2):
        model(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "iter_num": 5, "best_val_loss": 1.25,
            "config": {"n_layer": 2, "name": "tiny", "dropout": None, "betas": (0.9, 0.95), "tags": ["a", "b"]},
            "dtype": torch.float16, "device": torch.device("cpu"), "size": torch.Size([2, 3]),
            "flags": {1, 2}, "blob": b"\x00\xffbytes", "z": 2 + 3j}
    got = pyfastnn.load(save(ckpt, tmp_path / "ckpt.pt", fmt))
    assert got["iter_num"] == 5 and got["best_val_loss"] == 1.25 and got["config"] == ckpt["config"]
    assert got["dtype"] == np.dtype("float16") and got["device"] == "cpu" and got["size"] == (2, 3)
    assert got["flags"] == {1, 2} and got["blob"] == b"\x00\xffbytes" and got["z"] == 2 + 3j
    assert_same(got["model"], ckpt["model"])
    osd = ckpt["optimizer"]
    assert got["optimizer"]["param_groups"] == osd["param_groups"]
    assert set(got["optimizer"]["state"]) == {0, 1}
    for i in (0, 1):
        for k, v in osd["state"][i].items():
            np.testing.assert_array_equal(got["optimizer"]["state"][i][k], v.numpy())


def test_cuda_location_and_map_location(tmp_path):
    path = save({"w": torch.ones(2)}, tmp_path / "w.pt", "zip")
    got = pyfastnn.load(path, map_location="cpu")
    np.testing.assert_array_equal(got["w"], np.ones(2, np.float32))
    pyfastnn.load(path, map_location={"cuda:0": "cpu"})
    with pytest.raises(ValueError, match="numpy arrays"):
        pyfastnn.load(path, map_location="cuda:0")


def test_mmap_maps_the_file(tmp_path):
    sd = {"a": torch.arange(100, dtype=torch.float32), "b": torch.arange(10, dtype=torch.int64)}
    path = save(sd, tmp_path / "m.pt", "zip")
    got = pyfastnn.load(path, mmap=True)
    assert_same(got, sd)
    base = got["a"]
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)          # a view of the mapped file, not a copy
    got["a"][0] = 7         # copy-on-write: the file keeps its bytes
    assert pyfastnn.load(path)["a"][0] == 0
    legacy = save(sd, tmp_path / "l.pt", "legacy")
    with pytest.raises(ValueError, match="mmap"):
        pyfastnn.load(legacy, mmap=True)


def test_records_are_found_under_any_archive_name(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, buf)
    path = tmp_path / "renamed.pt"          # torch names the folder inside after the file; any name works
    path.write_bytes(buf.getvalue())
    assert zipfile.ZipFile(path).namelist()[0].split("/")[0] != "renamed"
    np.testing.assert_array_equal(pyfastnn.load(path)["w"], [0, 1, 2])


def test_big_endian_byteorder_record(tmp_path):
    # torch writes a 'byteorder' record; a big-endian machine's file holds big-endian storages
    src = tmp_path / "le.pt"
    torch.save({"w": torch.arange(4, dtype=torch.float32), "h": torch.arange(3).bfloat16()}, src)
    out = tmp_path / "be.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                width = 4 if len(data) == 16 else 2
                data = np.frombuffer(data, f"<u{width}").astype(f">u{width}").tobytes()
            zout.writestr(info, data)
    got = pyfastnn.load(out)
    np.testing.assert_array_equal(got["w"], np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(got["h"], np.arange(3, dtype=np.float32))


def test_whole_torch_module_needs_torch(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(hub.UnsafeCheckpointError, match="torch.nn.modules.linear.Linear"):
        pyfastnn.load(path)
    with pytest.raises(hub.UnsafeCheckpointError, match="without torch"):
        pyfastnn.load(path, weights_only=False)


def test_unsupported_tensor_kinds_say_so(tmp_path):
    path = tmp_path / "sparse.pt"
    torch.save({"s": torch.eye(3).to_sparse()}, path)
    with pytest.raises(hub.CheckpointError, match="sparse"):
        pyfastnn.load(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_weights_reads_torch_state_dicts(tmp_path, fmt):
    from pyfastnn import nn
    torch.manual_seed(0)
    tmod = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    path = save(tmod.state_dict(), tmp_path / "t.pt", fmt)
    omod = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).load_weights(str(path))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(omod.predict(x), tmod(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    nested = save({"model": tmod.state_dict(), "step": 1}, tmp_path / "n.pt", fmt)
    with pytest.raises(hub.CheckpointError, match=r"pyfastnn.load\(path\)\['model'\]"):
        serialization.load_state(nested)
