"""What Keras's ImageNet applications share: preprocess_input (caffe, tf and torch modes), decode_predictions
(on the class index file Keras caches), the input shape and input tensor rules, and weight files found in
Keras's cache directory. Nothing is downloaded: a missing file is an error that says which file to put where.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ...tensor import Tensor
from ..graph import KerasTensor
from .. import layers
from ..layers import Input

__all__ = ["preprocess_input", "decode_predictions", "obtain_input_shape", "correct_pad", "validate_activation",
           "keras_cache_dirs", "find_cached_file", "load_app_weights", "image_input", "get_source_inputs", "prepare",
           "pool_features"]

CLASS_INDEX = None
CLASS_INDEX_FILE = "imagenet_class_index.json"
CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
_CAFFE_MEAN = [103.939, 116.779, 123.68]


def preprocess_input(x, data_format=None, mode="caffe"):
    """Keras's imagenet_utils.preprocess_input on a batch (or one image) with values in [0, 255]:
    'caffe' RGB -> BGR then minus ImageNet's BGR mean; 'tf' scaled to [-1, 1]; 'torch' to [0, 1] then
    normalized with ImageNet's mean and std. A float numpy array is written over, as Keras does."""
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(f"preprocess_input: Expected mode to be one of `caffe`, `tf` or `torch`. Received: "
                         f"mode={mode!r}")
    if data_format is None:
        data_format = "channels_last"
    elif data_format not in ("channels_first", "channels_last"):
        raise ValueError(f"preprocess_input: Expected data_format to be one of `channels_first` or `channels_last`. "
                         f"Received: data_format={data_format!r}")
    if isinstance(x, (KerasTensor, Tensor)):
        return _preprocess_tensor(x, data_format, mode)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"preprocess_input: expected images of numbers, got dtype {x.dtype}")
    if not issubclass(x.dtype.type, np.floating):
        x = x.astype(np.float32, copy=False)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    axis = -1 if data_format == "channels_last" else (0 if x.ndim == 3 else 1)
    if x.ndim < 3 or x.shape[axis] < 3:
        raise ValueError(f"preprocess_input: mode '{mode}' expects RGB images, (H, W, 3) or (N, H, W, 3) "
                         f"({data_format}), got shape {x.shape}")
    if mode == "torch":
        x /= 255.0
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    else:
        x = x[..., ::-1] if data_format == "channels_last" else (x[::-1] if x.ndim == 3 else x[:, ::-1])
        mean, std = _CAFFE_MEAN, None
    channel = (lambda i: (Ellipsis, i)) if data_format == "channels_last" else \
        ((lambda i: (i,)) if x.ndim == 3 else (lambda i: (slice(None), i)))
    for i in range(3):
        x[channel(i)] -= mean[i]
        if std is not None:
            x[channel(i)] /= std[i]
    return x


def _preprocess_tensor(x, data_format, mode):
    """The same on a Tensor or a KerasTensor (then recorded as operations of the model's graph)."""
    if mode == "tf":
        return x / 127.5 - 1.0
    cf = data_format == "channels_first"
    shape = (3, 1, 1) if cf else (3,)
    if mode == "torch":
        mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(shape)
        std = np.array([0.229, 0.224, 0.225], np.float32).reshape(shape)
        return (x / 255.0 - mean) / std
    if cf:
        x = x[::-1] if x.ndim == 3 else x[:, ::-1]
    else:
        x = x[..., ::-1]
    return x - np.array(_CAFFE_MEAN, np.float32).reshape(shape)


def keras_cache_dirs():
    """Where Keras keeps downloaded files ('models' holds weights and the class index): $KERAS_HOME, then
    ~/.keras, then /tmp/.keras (Keras's fallback when the home directory is not writable)."""
    bases = []
    if os.environ.get("KERAS_HOME"):
        bases.append(os.environ["KERAS_HOME"])
    bases += [os.path.join(os.path.expanduser("~"), ".keras"), os.path.join("/tmp", ".keras")]
    out = []
    for b in bases:
        d = os.path.join(os.path.expanduser(b), "models")
        if d not in out:
            out.append(d)
    return out


def find_cached_file(fname, what, origin=None):
    """The path of fname in Keras's cache directories, or a FileNotFoundError saying what to put where."""
    dirs = keras_cache_dirs()
    for d in dirs:
        path = os.path.join(d, fname)
        if os.path.isfile(path):
            return path
    src = f" (Keras downloads it from {origin})" if origin else ""
    raise FileNotFoundError(f"{what} needs the file '{fname}'{src}; nothing is downloaded here. Put it in "
                            f"{dirs[0]}/ (looked in: {', '.join(dirs)})")


def decode_predictions(preds, top=5):
    """[(class_id, class_name, score), ...] of the top classes for each row of ImageNet predictions (N, 1000),
    best first, from Keras's cached imagenet_class_index.json."""
    global CLASS_INDEX
    preds = preds.numpy() if isinstance(preds, Tensor) else np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f"decode_predictions: `decode_predictions` expects a batch of predictions (i.e. a 2D array "
                         f"of shape (samples, 1000)). Received array with shape: {preds.shape}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= 1000:
        raise ValueError(f"decode_predictions: argument 'top' must be an int in [1, 1000], got {top!r}")
    if CLASS_INDEX is None:
        path = find_cached_file(CLASS_INDEX_FILE, "decode_predictions", CLASS_INDEX_URL)
        try:
            with open(path) as fh:
                index = json.load(fh)
            if not isinstance(index, dict) or not all(str(i) in index for i in range(1000)):
                raise ValueError("it does not map the class numbers '0'..'999' to [id, name]")
        except (OSError, ValueError) as exc:
            raise ValueError(f"decode_predictions: '{path}' is not ImageNet's class index ({exc})") from None
        CLASS_INDEX = index
    results = []
    for pred in preds:
        best = pred.argsort()[-top:][::-1]
        results.append(sorted((tuple(CLASS_INDEX[str(i)]) + (pred[i],) for i in best), key=lambda r: r[2],
                              reverse=True))
    return results


def obtain_input_shape(input_shape, default_size, min_size, require_flatten, weights=None, owner="application"):
    """Keras's rule for an application's input shape (channels_last): the default size when none is given,
    (None, None, 3) without the top, 3 channels for ImageNet weights, at least min_size pixels."""
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        default_shape = (default_size, default_size, input_shape[-1])
    else:
        default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and tuple(input_shape) != default_shape:
            raise ValueError(f"{owner}: When setting `include_top=True` and loading `imagenet` weights, "
                             f"`input_shape` should be {default_shape}.  Received: input_shape={input_shape}")
        return default_shape
    if input_shape:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"{owner}: `input_shape` must be a tuple of three integers, got {input_shape}")
        if input_shape[-1] != 3 and weights == "imagenet":
            raise ValueError(f"{owner}: The input must have 3 channels; Received `input_shape={input_shape}`")
        if any(s is not None and s < min_size for s in input_shape[:2]):
            raise ValueError(f"{owner}: Input size must be at least {min_size}x{min_size}; Received: "
                             f"input_shape={input_shape}")
    else:
        input_shape = default_shape if require_flatten else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError(f"{owner}: If `include_top` is True, you should specify a static `input_shape`. Received: "
                         f"input_shape={input_shape}")
    return input_shape


def correct_pad(inputs, kernel_size):
    """The zero padding before a stride-2 'valid' convolution that Keras's MobileNets use."""
    size = inputs.shape[1:3]
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    correct = (k[0] // 2, k[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def validate_activation(classifier_activation, weights, owner="application"):
    if weights is None:
        return
    if classifier_activation not in ("softmax", None, "linear"):
        raise ValueError(f"{owner}: Only `None` and `softmax` activations are allowed for the `classifier_activation` "
                         f"argument when using pretrained weights, with `include_top=True`; Received: "
                         f"classifier_activation={classifier_activation!r}")


def check_weights_arg(weights, include_top, classes, owner):
    if not (weights in ("imagenet", None) or (isinstance(weights, (str, os.PathLike)) and
                                              os.path.exists(weights))):
        raise ValueError(f"{owner}: The `weights` argument should be either `None` (random initialization), "
                         f"'imagenet' (pre-training on ImageNet), or the path to the weights file to be loaded.  "
                         f"Received: weights={weights!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"{owner}: If using `weights='imagenet'` with `include_top=True`, `classes` should be "
                         f"1000.  Received classes={classes}")
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes <= 0:
        raise ValueError(f"{owner}: argument 'classes' must be a positive int, got {classes!r}")


def check_pooling(pooling, owner):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"{owner}: argument 'pooling' must be None, 'avg' or 'max', got {pooling!r}")


def get_source_inputs(tensor):
    """The keras.Input tensors a KerasTensor is computed from."""
    out, seen, stack = [], set(), [tensor]
    while stack:
        t = stack.pop()
        if getattr(t, "input_layer", None) is not None:
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
            continue
        if t.node is not None:
            stack.extend(reversed(t.node.inputs))
    return out


def image_input(input_tensor, input_shape, owner):
    """(the tensor the network starts from, the model's inputs): a new Input, or the given KerasTensor and
    the Inputs behind it."""
    if input_tensor is None:
        inp = Input(shape=input_shape)
        return inp, inp
    if not isinstance(input_tensor, KerasTensor):
        raise TypeError(f"{owner}: argument 'input_tensor' must be a KerasTensor (from keras.Input() or a layer "
                        f"call), got {type(input_tensor).__name__}")
    sources = get_source_inputs(input_tensor)
    return input_tensor, sources[0] if len(sources) == 1 else sources


def prepare(owner, weights, include_top, classes, pooling, classifier_activation, input_tensor, input_shape,
            default_size=224):
    """The arguments' checks every application makes, then (the tensor the network starts from, the model's
    inputs, the input shape)."""
    check_weights_arg(weights, include_top, classes, owner)
    check_pooling(pooling, owner)
    if include_top:
        validate_activation(classifier_activation, weights, owner)
    input_shape = obtain_input_shape(input_shape, default_size, 32, include_top, weights, owner)
    img_input, inputs = image_input(input_tensor, input_shape, owner)
    return img_input, inputs, input_shape


def pool_features(x, pooling, avg_name=None, max_name=None):
    """The headless network's optional global pooling ('avg' or 'max')."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x


def load_app_weights(model, weights, fname, origin, owner):
    """Loads 'imagenet' (the file of Keras's name, from Keras's cache) or a path into the model."""
    if weights is None:
        return
    path = find_cached_file(fname, f"{owner}(weights='imagenet')", origin) if weights == "imagenet" \
        else os.fspath(weights)
    model.load_weights(path)         # Keras's .h5 / .weights.h5 files go through keras.saving
