"""safetensors, npz/npy and Hugging Face model directories."""
import json
import os

import numpy as np
import pytest

import pyfastnn
from pyfastnn import hub, serialization

rng = np.random.default_rng(0)


def test_safetensors_round_trip(tmp_path):
    pytest.importorskip("safetensors")
    tensors = {"w": rng.standard_normal((3, 4)).astype(np.float32), "i": np.arange(5, dtype=np.int64),
               "b": np.array([True, False]), "s": np.array(2.5, np.float64), "e": np.zeros((0, 2), np.float32),
               "h": np.arange(3, dtype=np.float16), "t": rng.standard_normal((4, 3)).astype(np.float32).T}
    path = tmp_path / "t.safetensors"
    hub.save_safetensors(tensors, path, metadata={"format": "pt", "note": "x"})
    assert hub.safetensors_metadata(path) == {"format": "pt", "note": "x"}
    got = hub.load_safetensors(path, keep_dtype=True)
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v)
    assert pyfastnn.load(path)["h"].dtype == np.float32
    mapped = pyfastnn.load(path, mmap=True)
    np.testing.assert_array_equal(mapped["w"], tensors["w"])


def test_safetensors_written_by_torch_with_bf16(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    sd = {"bf": torch.randn(3, 5).bfloat16(), "f16": torch.randn(4).half(), "f32": torch.randn(2, 2),
          "i8": torch.tensor([-1, 2], dtype=torch.int8)}
    path = tmp_path / "t.safetensors"
    st.save_file(sd, str(path))
    got = pyfastnn.load(path)
    for k, v in sd.items():
        want = v.float() if v.dtype in (torch.bfloat16, torch.float16) else v
        assert got[k].dtype == want.numpy().dtype
        np.testing.assert_array_equal(got[k], want.numpy())
    ml = pytest.importorskip("ml_dtypes")
    kept = pyfastnn.load(path, keep_dtype=True)
    assert kept["bf"].dtype == ml.bfloat16
    # and a bf16 file pyfastnn writes is one torch reads
    out = tmp_path / "back.safetensors"
    hub.save_safetensors(kept, out)
    again = st.load_file(str(out))
    assert again["bf"].dtype == torch.bfloat16 and torch.equal(again["bf"], sd["bf"])


def test_safetensors_writer_rejects_bad_input(tmp_path):
    pytest.importorskip("safetensors")
    with pytest.raises(TypeError, match="dict of arrays"):
        hub.save_safetensors([np.ones(2)], tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="'o' has dtype object"):
        hub.save_safetensors({"o": np.array([None])}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="metadata"):
        hub.save_safetensors({"w": np.ones(2)}, tmp_path / "x.safetensors", metadata={"n": 1})
    assert not os.listdir(tmp_path)


def test_missing_safetensors_package_is_named(tmp_path, monkeypatch):
    from pyfastnn.hub import _optional
    path = tmp_path / "t.npz"
    np.savez(path, w=np.ones(2))
    real = _optional.optional
    monkeypatch.setattr(_optional, "optional", lambda name: None if name.startswith("safetensors") else real(name))
    with pytest.raises(ImportError, match=r'pip install "pyfastnn\[hub\]"'):
        hub.save_safetensors({"w": np.ones(2)}, tmp_path / "x.safetensors")
    fake = tmp_path / "fake.safetensors"
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    fake.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    with pytest.raises(ImportError, match="safetensors"):
        pyfastnn.load(fake)
    np.testing.assert_array_equal(pyfastnn.load(path)["w"], [1, 1])      # npz needs nothing


def test_npz_and_npy(tmp_path):
    arrays = {"a": rng.standard_normal(4).astype(np.float32), "h": np.ones(2, np.float16), "i": np.arange(3)}
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    got = pyfastnn.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(got["a"], arrays["a"])
    assert got["h"].dtype == np.float32 and got["i"].dtype == arrays["i"].dtype
    np.save(tmp_path / "a.npy", arrays["a"])
    np.testing.assert_array_equal(pyfastnn.load(tmp_path / "a.npy"), arrays["a"])
    np.testing.assert_array_equal(pyfastnn.load(tmp_path / "a.npy", mmap=True), arrays["a"])
    with pytest.raises(ValueError, match="mmap=True .* an npz file"):
        pyfastnn.load(tmp_path / "c.npz", mmap=True)


# ---------------------------------------------------------------- Hugging Face directories
def tiny_bert():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=24, max_position_embeddings=24)
    return transformers.BertModel(config)


def assert_state_equal(got, model):
    want = model.state_dict()
    assert set(got) == set(want)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v.numpy())


def test_hf_safetensors_directory(tmp_path):
    model = tiny_bert()
    model.save_pretrained(tmp_path / "single")
    assert hub.read_hf_config(tmp_path / "single")["hidden_size"] == 16
    assert_state_equal(hub.load_hf_weights(tmp_path / "single"), model)
    model.save_pretrained(tmp_path / "sharded", max_shard_size=3000)
    files = hub.hf_weight_files(tmp_path / "sharded")
    assert files[0].endswith("model.safetensors.index.json") and len(files) > 3
    assert_state_equal(hub.load_hf_weights(tmp_path / "sharded"), model)
    assert_state_equal(serialization.load_state(tmp_path / "sharded"), model)


def test_hf_pytorch_bin_directories(tmp_path):
    torch = pytest.importorskip("torch")
    model = tiny_bert()
    sd = model.state_dict()
    single = tmp_path / "bin"
    single.mkdir()
    torch.save(sd, single / "pytorch_model.bin")
    assert_state_equal(hub.load_hf_weights(single), model)
    sharded = tmp_path / "bin_sharded"
    sharded.mkdir()
    keys = list(sd)
    parts = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    weight_map = {}
    for i, part in enumerate(parts):
        name = f"pytorch_model-{i + 1:05d}-of-00002.bin"
        torch.save({k: sd[k] for k in part}, sharded / name)
        weight_map.update({k: name for k in part})
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    assert_state_equal(hub.load_hf_weights(sharded), model)
    # an index naming a tensor its shard does not hold
    weight_map[keys[0]] = f"pytorch_model-00002-of-00002.bin"
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(hub.CheckpointError, match=f"lists tensor '{keys[0]}'"):
        hub.load_hf_weights(sharded)


def test_hf_directory_prefers_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    model = tiny_bert()
    model.save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even a pickle")
    assert hub.hf_weight_files(tmp_path) == [str(tmp_path / "model.safetensors")]
    assert_state_equal(hub.load_hf_weights(tmp_path), model)
