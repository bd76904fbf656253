"""Checkpoints crafted to run code are refused by every safe loader, and nothing from them runs."""
import builtins
import importlib
import io
import json
import os
import pickle
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

import pyfastnn
from pyfastnn import hub, serialization


class Reduce:
    """Pickles as a call of fn(*args), the way an attacker's __reduce__ would."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def payloads(marker):
    """Ways a pickle can try to create `marker`: each must be refused before it runs."""
    cmd = f"touch {marker}"
    return {
        "os.system": Reduce(os.system, cmd),
        "builtins.eval": Reduce(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": Reduce(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": Reduce(subprocess.Popen, ["touch", str(marker)]),
        "builtins.open": Reduce(builtins.open, str(marker), "w"),
        "getattr": Reduce(builtins.getattr, Reduce(importlib.import_module, "os"), "system"),
        "unknown-class": Reduce(shutil.copyfile, __file__, str(marker)),
    }


def raw_payload_pickles(marker):
    """Hand-written pickles the standard pickler would not produce (text GLOBAL of posix.system,
    STACK_GLOBAL, INST, BUILD on a function, an OrderedDict dunder)."""
    cmd = f"touch {marker}".encode()
    n = bytes([len(cmd)])
    return {
        "GLOBAL posix.system": b"\x80\x02cposix\nsystem\nq\x00X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R.",
        "STACK_GLOBAL": b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + n + cmd + b"\x85R.",
        "INST": b"(S'" + cmd + b"'\nios\nsystem\n.",
        "protocol-0 GLOBAL": b"cos\nsystem\n(S'" + cmd + b"'\ntR.",
        "BUILD __class__ on OrderedDict": b"\x80\x02ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__Nsb.",
        "REDUCE on a marker": b"\x80\x02cnumpy\nndarray\n)R.",
        "NEWOBJ of a function": b"\x80\x02cbuiltins\ncomplex\n)\x81.",
        "EXT1": b"\x80\x02\x82\x01.",
    }


def torch_zip_with(data_pkl, path):
    """A torch zip whose data.pkl is data_pkl (plus one real storage record)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/data/0", np.zeros(4, np.float32).tobytes())
        zf.writestr("archive/version", "3\n")
    return path


def hf_dir_with_bin(tmp_path, data):
    d = tmp_path / "hf"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text("{}")
    (d / "pytorch_model.bin").write_bytes(data)
    return d


def loaders(path, tmp_path):
    """Every safe entry point that could be handed the file."""
    data = open(path, "rb").read()
    sharded = tmp_path / "hf_sharded"
    sharded.mkdir(exist_ok=True)
    (sharded / "pytorch_model-00001-of-00001.bin").write_bytes(data)
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"w": "pytorch_model-00001-of-00001.bin"}}))
    return {
        "pyfastnn.load": lambda: pyfastnn.load(path),
        "hub.load": lambda: hub.load(path, weights_only=True),
        "load_state": lambda: serialization.load_state(path),
        "load_weights": lambda: pyfastnn.nn.Linear(2, 2).load_weights(str(path)),
        "hf dir": lambda: hub.load_hf_weights(hf_dir_with_bin(tmp_path, data)),
        "hf sharded": lambda: hub.load_hf_weights(sharded),
    }


def assert_refused_everywhere(path, tmp_path, marker, name_in_message=None):
    for where, call in loaders(path, tmp_path).items():
        with pytest.raises(pickle.UnpicklingError) as info:
            call()
        assert isinstance(info.value, hub.UnsafeCheckpointError), where
        msg = str(info.value)
        assert os.path.basename(str(path)) in msg or "pytorch_model" in msg, (where, msg)
        if name_in_message:
            assert name_in_message in msg, (where, msg)
        assert not os.path.exists(marker), f"{where} ran the payload"


@pytest.mark.parametrize("kind", list(payloads("x")))
def test_payload_in_a_raw_pickle(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"w": np.ones(2), "evil": payloads(marker)[kind]}, protocol=2))
    assert_refused_everywhere(path, tmp_path, marker)


@pytest.mark.parametrize("kind", list(raw_payload_pickles("x")))
def test_hand_written_payload_pickles(tmp_path, kind):
    marker = tmp_path / "pwned"
    data = raw_payload_pickles(marker)[kind]
    for path in (tmp_path / "evil.pkl", torch_zip_with(data, tmp_path / "evil.pt")):
        if path.suffix == ".pkl":
            path.write_bytes(data)
        if kind.startswith(("INST", "protocol-0")) and path.suffix == ".pkl":
            # a protocol-0 pickle does not start with PROTO: not even taken for a pickle
            with pytest.raises(hub.CheckpointError):
                pyfastnn.load(path)
            continue
        with pytest.raises(pickle.UnpicklingError):
            pyfastnn.load(path)
        assert not marker.exists()
    # and the reader refuses them directly, whatever the sniffing
    with pytest.raises(pickle.UnpicklingError):
        hub.unpickler.RestrictedUnpickler(io.BytesIO(data), source="evil").load()
    assert not marker.exists()


def test_payload_inside_torch_zip_and_legacy(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    for name, kwargs in [("zip.pt", {}), ("legacy.pt", {"_use_new_zipfile_serialization": False})]:
        path = tmp_path / name
        # the payload comes first, then real tensors: nothing may run even though the tensors are fine
        torch.save({"evil": Reduce(os.system, f"touch {marker}"), "w": torch.ones(2)}, path, **kwargs)
        assert_refused_everywhere(path, tmp_path, marker, name_in_message="posix.system")


def test_payload_as_tensor_argument(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    # a legitimate-looking tensor whose rebuild arguments hide the call
    t = torch.ones(2)

    class Sneaky(torch.Tensor):
        def __reduce_ex__(self, proto):
            return torch._utils._rebuild_tensor_v2, (Reduce(os.system, f"touch {marker}"), 0, (2,), (1,), False,
                                                     {})
    path = tmp_path / "sneaky.pt"
    torch.save({"w": t.as_subclass(Sneaky)}, path)
    assert_refused_everywhere(path, tmp_path, marker, name_in_message="posix.system")


def test_weights_only_false_is_the_explicit_way_to_run_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "trusted.pkl"
    path.write_bytes(pickle.dumps({"x": Reduce(os.system, f"touch {marker}")}, protocol=2))
    with pytest.raises(hub.UnsafeCheckpointError, match="weights_only=False"):
        pyfastnn.load(path)
    assert not marker.exists()
    pyfastnn.load(path, weights_only=False)       # the caller asked for it
    assert marker.exists()


def test_legacy_dry_run_calls_nothing(tmp_path):
    # weights_only=False on a legacy file reads the pickle twice; the first pass must call nothing
    torch = pytest.importorskip("torch")
    counter = tmp_path / "count"
    path = tmp_path / "legacy.pt"
    torch.save({"side_effect": Reduce(os.system, f"echo x >> {counter}"), "w": torch.arange(3.0)}, path,
               _use_new_zipfile_serialization=False)
    got = pyfastnn.load(path, weights_only=False)
    np.testing.assert_array_equal(got["w"], [0, 1, 2])
    assert counter.read_text() == "x\n"            # ran once (asked for), not twice


def test_out_of_bounds_views_are_refused(tmp_path):
    from pyfastnn.hub import pickler, torch_format
    for shape, strides, offset in [((1000,), (1,), 0), ((2, 2), (1, 10 ** 12), 0), ((4,), (1,), 2),
                                   ((2,), (1,), 2 ** 62)]:
        arr = np.arange(4, dtype=np.float32)
        plan = pickler.plan_storages({"w": arr})
        spec = plan.specs[id(arr)]
        spec.shape, spec.strides, spec.offset = shape, strides, offset
        data = pickler.dump_weights_pickle({"w": arr}, plan)
        path = tmp_path / "oob.pt"
        with open(path, "wb") as fh:
            torch_format.write_zip(fh, torch_format.zip_records(data, plan.records))
        with pytest.raises(hub.CheckpointError, match="reaches element|offset"):
            pyfastnn.load(path)
