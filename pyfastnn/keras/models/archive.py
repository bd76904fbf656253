"""The whole-model file: Keras 3's .keras layout, a zip of config.json (the architecture: each layer's class
name and get_config(), a functional model's graph as inbound nodes, the compile settings), metadata.json and
the weights. Keras keeps the weights in model.weights.h5; pyfastnn keeps the model's state_dict in
model.weights.npz (pyfastnn.serialization.save_state), read back without running anything from the file."""
from __future__ import annotations

import datetime
import json
import os
import tempfile
import zipfile

from ... import serialization
from ...hub._files import atomic_path, check_file, fspath

__all__ = ["write_archive", "read_archive", "is_archive", "WEIGHTS_MEMBER", "FORMAT"]

CONFIG_MEMBER, METADATA_MEMBER = "config.json", "metadata.json"
WEIGHTS_MEMBER = "model.weights.npz"
KERAS_WEIGHTS_MEMBER = "model.weights.h5"
FORMAT = "pyfastnn.keras/1"
_MAX_JSON = 256 << 20           # a config larger than this is not a model description


def write_archive(path, config, state):
    """Writes config (a JSON-able dict) and state (name -> array) to path, atomically."""
    path = fspath(path, "save")
    try:
        config_text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save: the model's config is not JSON-serializable ({exc})") from None
    metadata = {"keras_version": "3", "format": FORMAT, "weights": WEIGHTS_MEMBER,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    with tempfile.TemporaryDirectory(prefix="pyfastnn-save-") as tmp:
        weights = os.path.join(tmp, WEIGHTS_MEMBER)
        serialization.save_state(state, weights)
        with atomic_path(path, "save") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(METADATA_MEMBER, json.dumps(metadata))
            zf.writestr(CONFIG_MEMBER, config_text)
            zf.write(weights, WEIGHTS_MEMBER, compress_type=zipfile.ZIP_STORED)


def is_archive(path):
    """Whether path is a zip holding config.json (a .keras file, Keras's or pyfastnn's)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return CONFIG_MEMBER in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _json_member(zf, name, path):
    info = zf.getinfo(name)
    if info.file_size > _MAX_JSON:
        raise ValueError(f"load_model: '{path}': {name} is {info.file_size} bytes, too large for a model config")
    try:
        return json.loads(zf.read(name).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"load_model: '{path}': {name} is not valid JSON ({exc})") from None


def _empty_npz(path):
    """A model without weights writes an npz with no arrays, which the weight readers take for no format."""
    try:
        with zipfile.ZipFile(path) as zf:
            return not zf.namelist()
    except zipfile.BadZipFile:
        return False


def read_archive(path):
    """(config, metadata, state) from a file write_archive wrote; a ValueError naming the file when it is not
    one, is truncated or damaged, or is Keras's own .keras file (its weights are HDF5)."""
    path = fspath(path, "load_model")
    check_file(path, "load_model")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if CONFIG_MEMBER not in names:
                raise ValueError(f"load_model: '{path}' is a zip file without {CONFIG_MEMBER}: not a saved model")
            config = _json_member(zf, CONFIG_MEMBER, path)
            metadata = _json_member(zf, METADATA_MEMBER, path) if METADATA_MEMBER in names else {}
            if WEIGHTS_MEMBER not in names:
                if KERAS_WEIGHTS_MEMBER in names:
                    raise ValueError(f"load_model: '{path}' was written by Keras (its weights are "
                                     f"{KERAS_WEIGHTS_MEMBER}); pyfastnn.keras.models.load_model reads the .keras "
                                     f"files pyfastnn writes. Build the model with pyfastnn.keras and load that "
                                     f"weights file (extract it from the zip) with model.load_weights")
                raise ValueError(f"load_model: '{path}' has no weights ({WEIGHTS_MEMBER} is missing)")
            with tempfile.TemporaryDirectory(prefix="pyfastnn-load-") as tmp:
                weights = zf.extract(WEIGHTS_MEMBER, tmp)
                try:
                    state = {} if _empty_npz(weights) else serialization.load_state(weights)
                except ValueError as exc:
                    raise ValueError(f"load_model: '{path}': its weights ({WEIGHTS_MEMBER}) cannot be read: "
                                     f"{str(exc).replace(weights, WEIGHTS_MEMBER)}") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ValueError(f"load_model: '{path}' is truncated or damaged ({exc})") from None
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise ValueError(f"load_model: '{path}' is truncated or damaged ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or \
            not isinstance(config.get("config"), dict):
        raise ValueError(f"load_model: '{path}': {CONFIG_MEMBER} does not describe a model (it needs 'class_name' "
                         f"and 'config')")
    return config, metadata, state
