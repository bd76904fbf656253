"""keras.utils.image_dataset_from_directory without TensorFlow: the same file listing, labels, shuffling of
the file list and training/validation split as tf.keras, images decoded by Pillow and resized with
TensorFlow's resize semantics, served as a Sequence of (images float32 0..255, labels) batches that the
training loop prefetches in background threads."""
from __future__ import annotations

import os

import numpy as np

from ._data import Sequence
from ._imaging import (TF_INTERPOLATIONS, check_data_format, crop_box, pil_image, read_image, resize,
                       resize_with_pad)

__all__ = ["image_dataset_from_directory", "ImageDataset", "ALLOWLIST_FORMATS"]

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_WHERE = "image_dataset_from_directory"


def _iter_valid_files(directory, follow_links, formats):
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda t: t[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                yield root, fname


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None, follow_links=False,
                    verbose=True):
    """(file_paths, labels, class_names) as tf.keras lists them: class folders sorted (hidden ones skipped),
    files walked in sorted order, then the paths and labels shuffled together with RandomState(seed)."""
    if labels != "inferred":
        subdirs = [""]
        class_names = subdirs
    else:
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if not class_names:
            class_names = subdirs
        elif set(class_names) != set(subdirs):
            raise ValueError(f"{_WHERE}: The `class_names` passed did not match the names of the subdirectories of "
                             f"the target directory. Expected: {subdirs}, but received: {class_names}")
    class_indices = dict(zip(class_names, range(len(class_names))))
    filenames, found = [], []
    for subdir in subdirs:
        dirpath = os.path.join(directory, subdir)
        dirname = os.path.basename(dirpath)
        for root, fname in _iter_valid_files(dirpath, follow_links, formats):
            found.append(class_indices[dirname])
            filenames.append(os.path.join(dirname, os.path.relpath(os.path.join(root, fname), dirpath)))
    if labels not in ("inferred", None):
        if len(labels) != len(filenames):
            raise ValueError(f"{_WHERE}: Expected the lengths of `labels` to match the number of files in the target "
                             f"directory. len(labels) is {len(labels)} while we found {len(filenames)} files in "
                             f"directory {directory}.")
        class_names = sorted(set(labels))
        labels = list(labels)
    else:
        labels = np.array(found, dtype="int32")
    if verbose:
        print(f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    file_paths = [os.path.join(directory, fname) for fname in filenames]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def _split(samples, labels, validation_split, subset, verbose=True):
    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    if subset == "training":
        if verbose:
            print(f"Using {len(samples) - num_val} files for training.")
        return samples[:len(samples) - num_val], labels[:len(samples) - num_val]
    if verbose:
        print(f"Using {num_val} files for validation.")
    return samples[len(samples) - num_val:], labels[len(samples) - num_val:]


def _check_split(validation_split, subset, shuffle, seed):
    if validation_split and not (isinstance(validation_split, (int, float)) and 0 < validation_split < 1):
        raise ValueError(f"{_WHERE}: `validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError(f"{_WHERE}: If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'{_WHERE}: `subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError(f"{_WHERE}: If using `validation_split` and shuffling the data, you must provide a `seed` "
                         f"argument, to make sure that there is no overlap between the training and validation "
                         f"subset.")


class _BatchStream(Sequence):
    """What ImageDataset and its mapped views share: one pass per iteration, and tf.data-style take/map."""

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()

    # tf.data-style conveniences the tutorials call
    def take(self, count):
        """The first `count` batches (all with -1)."""
        return _Mapped(self, None, count)

    def map(self, fn, num_parallel_calls=None):
        """A dataset whose batches are fn(images, labels) (fn(images) without labels)."""
        if not callable(fn):
            raise TypeError(f"{_WHERE}: map needs a callable, got {fn!r}")
        return _Mapped(self, fn, -1)


class ImageDataset(_BatchStream):
    """What image_dataset_from_directory returns: len() batches of (images float32 (B, H, W, C) in 0..255,
    labels) — int32 (B,) for label_mode 'int', float32 one-hot (B, K) for 'categorical', float32 (B, 1) for
    'binary', images only for None; single samples when batch_size is None. ``class_names`` and
    ``file_paths`` as Keras sets them. Shuffled again at each pass (on_epoch_end, or after each full
    iteration), reproducibly from the seed. tf.data-style conveniences: take, map, cache, prefetch."""

    def __init__(self, file_paths, labels, label_mode, class_names, image_size, num_channels, interpolation,
                 crop_to_aspect_ratio, pad_to_aspect_ratio, batch_size, shuffle, seed, data_format):
        self.file_paths = list(file_paths)
        self._labels = None if labels is None else np.asarray(labels)
        self.label_mode = label_mode
        self.class_names = class_names
        self.image_size = image_size
        self._mode = {1: "L", 3: "RGB", 4: "RGBA"}[num_channels]
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.pad_to_aspect_ratio = pad_to_aspect_ratio
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.data_format = data_format
        self._epoch = 0
        self._order = self._make_order()
        self._cache = None

    def _make_order(self):
        n = len(self.file_paths)
        if not self.shuffle:
            return np.arange(n)
        return np.random.RandomState((self.seed + self._epoch) % 2 ** 32).permutation(n)

    def __len__(self):
        n = len(self.file_paths)
        return n if self.batch_size is None else -(-n // self.batch_size)

    def load_image(self, i):
        """Image i of file_paths, decoded and resized: float32 (H, W, C) (or (C, H, W))."""
        cache = self._cache
        if cache is not None and i in cache:
            return cache[i]
        x = read_image(self.file_paths[i], self._mode)
        if self.crop_to_aspect_ratio:
            top, left, ch, cw = crop_box(x.shape[0], x.shape[1], self.image_size)
            x = resize(x[top:top + ch, left:left + cw], self.image_size, self.interpolation)
        elif self.pad_to_aspect_ratio:
            x = resize_with_pad(x, self.image_size, self.interpolation)
        else:
            x = resize(x, self.image_size, self.interpolation)
        if self.data_format == "channels_first":
            x = np.ascontiguousarray(x.transpose(2, 0, 1))
        if cache is not None:
            cache[i] = x
        return x

    def _label(self, idx):
        y = self._labels[idx]
        if self.label_mode == "int":
            return y.astype("int32") if y.dtype.kind in "iub" else y
        if self.label_mode == "binary":
            return y.astype("float32")[..., None]
        return np.eye(len(self.class_names), dtype="float32")[y.astype(np.int64)]

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{_WHERE}: batch index must be an int, got {type(index).__name__}")
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{_WHERE}: batch index {index} out of range for {len(self)} batches")
        order = self._order
        if self.batch_size is None:
            idx = order[index]
            x = self.load_image(idx)
        else:
            idx = order[index * self.batch_size:(index + 1) * self.batch_size]
            x = np.stack([self.load_image(i) for i in idx])
        if self.label_mode is None:
            return x
        return x, self._label(idx)

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._make_order()

    def cache(self, filename=""):
        """Keeps decoded, resized images in memory after their first load."""
        if self._cache is None:
            self._cache = {}
        return self

    def prefetch(self, buffer_size=None):
        """Batches are already prefetched by the training loop's background threads."""
        return self

    def as_numpy_iterator(self):
        return iter(self)

    def cardinality(self):
        return len(self)

    def __repr__(self):
        return (f"<ImageDataset: {len(self.file_paths)} files, {len(self)} batches of {self.batch_size}, "
                f"classes {self.class_names}>")


class _Mapped(_BatchStream):
    """A view of a dataset: at most `count` batches, each passed through fn."""

    def __init__(self, base, fn, count):
        self._base, self._fn = base, fn
        self._count = len(base) if count is None or count < 0 else min(int(count), len(base))
        self.class_names = getattr(base, "class_names", None)
        self.file_paths = getattr(base, "file_paths", None)

    def __len__(self):
        return self._count

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if index < 0:
                index += self._count
            if not 0 <= index < self._count:
                raise IndexError(f"{_WHERE}: batch index {index} out of range for {self._count} batches")
        batch = self._base[index]
        if self._fn is None:
            return batch
        return self._fn(*batch) if isinstance(batch, tuple) else self._fn(batch)

    def on_epoch_end(self):
        if hasattr(self._base, "on_epoch_end"):
            self._base.on_epoch_end()


    def cache(self, filename=""):
        return self

    def prefetch(self, buffer_size=None):
        return self

    def as_numpy_iterator(self):
        return iter(self)

    def cardinality(self):
        return len(self)


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                 color_mode="rgb", batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True, **kwargs):
    """A dataset of image batches from a directory with one subfolder per class (labels='inferred'), or with
    `labels` a list of labels for the files in sorted order, or None. subset='training' | 'validation' |
    'both' with validation_split (and a seed when shuffling) splits the shuffled file list as Keras does."""
    if "smart_resize" in kwargs:
        crop_to_aspect_ratio = kwargs.pop("smart_resize")
    if kwargs:
        raise TypeError(f"{_WHERE}: Unknown keywords argument(s): {tuple(kwargs.keys())}")
    if not isinstance(directory, (str, bytes, os.PathLike)):
        raise TypeError(f"{_WHERE}: argument 'directory' must be a path, got {type(directory).__name__}")
    directory = os.fsdecode(directory)
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(f"{_WHERE}: `labels` argument should be a list/tuple of integer labels, of the same "
                             f"size as the number of image files in the target directory. If you wish to infer the "
                             f"labels from the subdirectory names in the target directory, pass "
                             f'`labels="inferred"`. If you wish to get a dataset that only contains images (no '
                             f"labels), pass `labels=None`. Received: labels={labels}")
        if class_names:
            raise ValueError(f'{_WHERE}: You can only pass `class_names` if `labels="inferred"`. Received: '
                             f"labels={labels}, and class_names={class_names}")
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError(f'{_WHERE}: `label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode}")
    if labels is None or label_mode is None:
        labels = None
        label_mode = None
    channels = {"rgb": 3, "rgba": 4, "grayscale": 1}.get(color_mode)
    if channels is None:
        raise ValueError(f'{_WHERE}: `color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. '
                         f"Received: color_mode={color_mode}")
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or \
            not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in image_size):
        raise ValueError(f"{_WHERE}: Invalid `image_size` value. Expected a tuple of 2 positive integers. "
                         f"Received: image_size={image_size}")
    image_size = (int(image_size[0]), int(image_size[1]))
    if not isinstance(interpolation, str) or interpolation.lower() not in TF_INTERPOLATIONS:
        raise ValueError(f"{_WHERE}: argument 'interpolation' must be one of {', '.join(TF_INTERPOLATIONS)}, got "
                         f"{interpolation!r}")
    interpolation = interpolation.lower()
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ValueError(f"{_WHERE}: argument 'batch_size' must be a positive int or None, got {batch_size!r}")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(f"{_WHERE}: Only one of `pad_to_aspect_ratio`, `crop_to_aspect_ratio` can be set to `True`.")
    data_format = check_data_format(_WHERE, data_format)
    _check_split(validation_split, subset, shuffle, seed)
    if not os.path.exists(directory):
        raise FileNotFoundError(f"{_WHERE}: directory '{directory}' does not exist")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"{_WHERE}: '{directory}' is not a directory")
    pil_image()
    if seed is None:
        seed = np.random.randint(1e6)

    image_paths, labels, class_names = index_directory(directory, labels, ALLOWLIST_FORMATS, class_names=class_names,
                                                       shuffle=shuffle, seed=seed, follow_links=follow_links,
                                                       verbose=verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'{_WHERE}: When passing `label_mode="binary"`, there must be exactly 2 class_names. '
                         f"Received: class_names={class_names}")

    def make(paths, labs):
        return ImageDataset(paths, labs, label_mode, class_names, image_size, channels, interpolation,
                            crop_to_aspect_ratio, pad_to_aspect_ratio, batch_size, shuffle, seed, data_format)

    if subset == "both":
        train = _split(image_paths, labels, validation_split, "training", verbose)
        val = _split(image_paths, labels, validation_split, "validation", verbose)
        for what, (paths, _) in (("training", train), ("validation", val)):
            if not paths:
                raise ValueError(f"{_WHERE}: No {what} images found in directory {directory}. "
                                 f"Allowed formats: {ALLOWLIST_FORMATS}")
        train_ds, val_ds = make(*train), make(*val)
        val_ds.shuffle = False
        val_ds._order = val_ds._make_order()
        return [train_ds, val_ds]
    image_paths, labels = _split(image_paths, labels, validation_split, subset, verbose)
    if not image_paths:
        raise ValueError(f"{_WHERE}: No images found in directory {directory}. Allowed formats: {ALLOWLIST_FORMATS}")
    return make(image_paths, labels)
