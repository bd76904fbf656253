"""Truncated, corrupted and wrong files give errors that name the file and say what was wrong."""
import zipfile

import numpy as np
import pytest

import pyfastnn
from pyfastnn import hub, serialization


def write_checkpoints(tmp_path):
    """One file per format, each a few KB."""
    sd = {"w": np.arange(300, dtype=np.float32).reshape(30, 10), "b": np.arange(10, dtype=np.int64), "n": 3}
    files = {"ours": tmp_path / "ours.pt"}
    pyfastnn.save(sd, files["ours"])
    files["npz"] = tmp_path / "w.npz"
    np.savez(files["npz"], w=sd["w"], b=sd["b"])
    files["pickle"] = tmp_path / "old.pfn"
    import pickle
    files["pickle"].write_bytes(pickle.dumps({"w": sd["w"]}, protocol=2))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tsd = {"w": torch.from_numpy(sd["w"]), "b": torch.from_numpy(sd["b"])}
        files["torch-zip"] = tmp_path / "t.pt"
        torch.save(tsd, files["torch-zip"])
        files["legacy"] = tmp_path / "l.pt"
        torch.save(tsd, files["legacy"], _use_new_zipfile_serialization=False)
    try:
        from safetensors.numpy import save_file
    except ImportError:
        pass
    else:
        files["safetensors"] = tmp_path / "w.safetensors"
        save_file({"w": sd["w"], "b": sd["b"]}, str(files["safetensors"]))
    return files


def cuts(n):
    return sorted({1, 7, 8, 9, 20, 64, n // 4, n // 3, n // 2, (2 * n) // 3, n - 200, n - 30, n - 8, n - 1} - {0})


def test_truncated_files(tmp_path):
    files = write_checkpoints(tmp_path)
    for kind, path in files.items():
        data = path.read_bytes()
        pyfastnn.load(path)         # the whole file loads
        for cut in cuts(len(data)):
            bad = tmp_path / f"cut_{kind}_{cut}.bin"
            bad.write_bytes(data[:cut])
            with pytest.raises(hub.CheckpointError) as info:
                pyfastnn.load(bad)
            msg = str(info.value)
            assert str(bad) in msg, (kind, cut, msg)
            assert any(w in msg for w in ("truncated", "corrupted", "not a checkpoint", "not a valid",
                                          "missing")), (kind, cut, msg)
            with pytest.raises(hub.CheckpointError):
                serialization.load_state(bad)


def test_flipped_bytes_in_a_storage_fail_the_crc(tmp_path):
    path = write_checkpoints(tmp_path)["ours"]
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("archive/data/0")
    start = info.header_offset + 30 + len(info.filename) + (len(data) and int.from_bytes(
        data[info.header_offset + 28:info.header_offset + 30], "little"))
    data[start + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(hub.CheckpointError, match="CRC"):
        pyfastnn.load(path)


def test_zip_with_a_missing_storage(tmp_path):
    src = write_checkpoints(tmp_path)["ours"]
    out = tmp_path / "missing.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            if not info.filename.endswith("data/1"):
                zout.writestr(info, zin.read(info))
    with pytest.raises(hub.CheckpointError, match=r"missing.pt: storage record 'archive/data/1' is missing"):
        pyfastnn.load(out)


def test_storage_of_the_wrong_size(tmp_path):
    src = write_checkpoints(tmp_path)["ours"]
    out = tmp_path / "short.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, data[:-4] if info.filename.endswith("data/0") else data)
    with pytest.raises(hub.CheckpointError, match="holds 1196 bytes, the checkpoint's tensors need 1200"):
        pyfastnn.load(out)


def test_corrupted_headers(tmp_path):
    files = write_checkpoints(tmp_path)
    data = files["ours"].read_bytes()
    bad = tmp_path / "zeroed.pt"
    bad.write_bytes(b"\0" * 16 + data[16:])
    with pytest.raises(hub.CheckpointError, match="zeroed.pt: not a checkpoint pyfastnn reads"):
        pyfastnn.load(bad)
    # data.pkl garbled: still a clear error
    out = tmp_path / "garbled.pt"
    with zipfile.ZipFile(files["ours"]) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            d = zin.read(info)
            zout.writestr(info.filename, d[:2] + b"\xff\xfe" + d[4:] if info.filename.endswith("data.pkl") else d)
    with pytest.raises(hub.CheckpointError, match="garbled.pt: .*pickle"):
        pyfastnn.load(out)
    if "safetensors" in files:
        data = bytearray(files["safetensors"].read_bytes())
        data[10:14] = b"!!!!"          # inside the JSON header
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(bytes(data))
        with pytest.raises(hub.CheckpointError, match="bad.safetensors: not a valid safetensors file"):
            pyfastnn.load(bad)


def test_paths_that_are_not_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file '.*nope.pt'"):
        pyfastnn.load(tmp_path / "nope.pt")
    with pytest.raises(IsADirectoryError, match="is a directory.*load_hf_weights"):
        pyfastnn.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="load_weights: no such file"):
        serialization.load_state(tmp_path / "nope.npz")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(hub.CheckpointError, match="empty.pt: the file is empty"):
        pyfastnn.load(empty)
    text = tmp_path / "notes.txt"
    text.write_text("hello, these are not weights\n")
    with pytest.raises(hub.CheckpointError, match="notes.txt: not a checkpoint pyfastnn reads"):
        pyfastnn.load(text)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.md", "hi")
    with pytest.raises(hub.CheckpointError, match="neither a PyTorch checkpoint.*readme.md"):
        pyfastnn.load(other_zip)
    h5 = tmp_path / "w.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(hub.CheckpointError, match="HDF5"):
        pyfastnn.load(h5)
    objects = tmp_path / "objects.npz"
    np.savez(objects, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(hub.CheckpointError, match="object arrays"):
        pyfastnn.load(objects)


def test_torchscript_archives_are_named(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(hub.CheckpointError, match="TorchScript"):
        pyfastnn.load(path)


def test_hf_directory_errors(tmp_path):
    d = tmp_path / "model"
    with pytest.raises(FileNotFoundError, match="no such directory"):
        hub.load_hf_weights(d)
    d.mkdir()
    (d / "tf_model.h5").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="tf_model.h5 \\(TensorFlow\\)"):
        hub.load_hf_weights(d)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hub.read_hf_config(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(hub.CheckpointError, match="config.json: not valid JSON"):
        hub.read_hf_config(d)
    (d / "model.safetensors.index.json").write_text('{"weight_map": {"w": "../../etc/passwd"}}')
    with pytest.raises(hub.CheckpointError, match="refuses shard '../../etc/passwd'"):
        hub.load_hf_weights(d)
    (d / "model.safetensors.index.json").write_text('{"weight_map": {"w": "model-1.safetensors"}}')
    with pytest.raises(FileNotFoundError, match="shard 'model-1.safetensors' .* is missing"):
        hub.load_hf_weights(d)
    f = tmp_path / "file.pt"
    pyfastnn.save({"w": np.ones(1)}, f)
    with pytest.raises(NotADirectoryError, match="not a model directory"):
        hub.load_hf_weights(f)


def test_deeply_nested_pickles_fail_cleanly(tmp_path):
    # hashing a tuple nested a million deep overflows the C stack; the reader stops long before
    for i, data in enumerate([b"\x80\x02}K\x00" + b"\x85" * 1_000_000 + b"K\x01s.",
                              b"\x80\x02" + b"(" * 1_000_000 + b".",
                              b"\x80\x02" + b"]" * 200_000 + b"."]):
        path = tmp_path / f"deep{i}.pkl"
        path.write_bytes(data)
        try:
            pyfastnn.load(path)
        except hub.CheckpointError as exc:
            assert str(path) in str(exc)


def test_mutated_files_fail_cleanly(tmp_path):
    """Random byte edits of real checkpoints: every outcome is a load or a CheckpointError /
    UnsafeCheckpointError, never another exception (or a crash)."""
    import pickle
    import random
    files = write_checkpoints(tmp_path)
    files["old5"] = tmp_path / "old5.pfn"
    files["old5"].write_bytes(pickle.dumps({"a": np.arange(4.0), "s": np.float32(2), "t": (1, (2, 3))}, protocol=5))
    rnd = random.Random(1234)
    sources = {k: p.read_bytes() for k, p in files.items()}
    for i in range(600):
        kind = rnd.choice(sorted(sources))
        data = bytearray(sources[kind])
        for _ in range(rnd.randint(1, 3)):
            pos = rnd.randrange(len(data))
            op = rnd.random()
            if op < 0.6:
                data[pos] = rnd.randrange(256)
            elif op < 0.8:
                del data[pos:pos + rnd.randint(1, 8)]
            else:
                data[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        path = tmp_path / "mutated.bin"
        path.write_bytes(bytes(data))
        try:
            pyfastnn.load(path)
        except (hub.CheckpointError, hub.UnsafeCheckpointError):
            pass
        except ImportError:
            pass
