"""keras.preprocessing.image with tf.keras 2's semantics: ImageDataGenerator (random affine augmentation,
feature/sample-wise standardisation, ZCA), its iterators ``flow`` / ``flow_from_directory`` — Sequences the
training loop prepares in background threads — and the image-file helpers.

The affine warp is pyfastnn's C++ kernel (ops.affine_warp), which reproduces the scipy.ndimage call Keras
makes (same transform matrices, same fill modes, same values); a batch is warped in one threaded call with
the flips folded in. Random parameters are drawn from numpy's legacy generator in Keras's order, so a seeded
iterator yields the same augmentations as tf.keras 2 with the same seed."""
from __future__ import annotations

import os
import threading
import warnings

import numpy as np

from ... import ops
from ._data import Sequence
from ._imaging import (PIL_INTERPOLATIONS, array_to_img, check_data_format, check_size, img_to_array, load_img,
                       pil_image, save_img, smart_resize, to_uint8_image)

__all__ = ["ImageDataGenerator", "Iterator", "DirectoryIterator", "NumpyArrayIterator", "load_img", "img_to_array",
           "array_to_img", "save_img", "smart_resize", "apply_affine_transform", "apply_channel_shift",
           "apply_brightness_shift", "random_rotation", "random_shift", "random_shear", "random_zoom",
           "random_channel_shift", "random_brightness", "flip_axis", "transform_matrix_offset_center"]

_FILL_MODES = ("constant", "nearest", "reflect", "wrap")


# --------------------------------------------------------------------------- transforms on one image
def flip_axis(x, axis):
    x = np.asarray(x).swapaxes(axis, 0)
    x = x[::-1, ...]
    return x.swapaxes(0, axis)


def transform_matrix_offset_center(matrix, x, y):
    """The matrix conjugated by a shift to the image centre: transforms act about the centre."""
    o_x = float(x) / 2 - 0.5
    o_y = float(y) / 2 - 0.5
    offset_matrix = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset_matrix = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return np.dot(np.dot(offset_matrix, matrix), reset_matrix)


def _affine_matrix(theta, tx, ty, shear, zx, zy, h, w, swap):
    """Keras's composition (rotation, shift, shear, zoom, about the centre) as the 2x3 pull map scipy is given,
    or None when there is nothing to do. theta and shear in degrees; tx along rows, ty along columns."""
    transform_matrix = None
    if theta != 0:
        theta = np.deg2rad(theta)
        transform_matrix = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                                     [0, 0, 1]])
    if tx != 0 or ty != 0:
        shift_matrix = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        transform_matrix = shift_matrix if transform_matrix is None else np.dot(transform_matrix, shift_matrix)
    if shear != 0:
        shear = np.deg2rad(shear)
        shear_matrix = np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
        transform_matrix = shear_matrix if transform_matrix is None else np.dot(transform_matrix, shear_matrix)
    if zx != 1 or zy != 1:
        zoom_matrix = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        transform_matrix = zoom_matrix if transform_matrix is None else np.dot(transform_matrix, zoom_matrix)
    if transform_matrix is None:
        return None
    transform_matrix = transform_matrix_offset_center(transform_matrix, h, w)
    if swap:
        # The matrix is built in (x, y); arrays index (row, col).
        transform_matrix[:, [0, 1]] = transform_matrix[:, [1, 0]]
        transform_matrix[[0, 1]] = transform_matrix[[1, 0]]
    m = np.asarray(transform_matrix[:2], dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError(f"apply_affine_transform: the transform parameters give a non-finite matrix "
                         f"(theta={theta}, tx={tx}, ty={ty}, shear={shear}, zx={zx}, zy={zy})")
    return m


def _check_fill(where, fill_mode, order):
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"{where}: argument 'fill_mode' must be one of {', '.join(map(repr, _FILL_MODES))}, "
                         f"got {fill_mode!r}")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order not in (0, 1):
        raise ValueError(f"{where}: interpolation order must be 0 (nearest) or 1 (bilinear, Keras's default), "
                         f"got {order!r}; pyfastnn does not implement spline orders 2-5")


def _warp(x, m, fill_mode, cval, order, flip_cols=None, flip_rows=None):
    """ops.affine_warp for any numeric dtype: floats warp in float32/float64, integers in float64 and are
    rounded and clipped back as scipy writes integer outputs."""
    if x.dtype in (np.float32, np.float64):
        return ops.affine_warp(x, m, order=order, fill_mode=fill_mode, cval=cval, flip_cols=flip_cols,
                               flip_rows=flip_rows)
    if x.dtype.kind == "f":
        work = np.float32 if x.dtype.itemsize < 4 else np.float64
        return ops.affine_warp(x.astype(work), m, order=order, fill_mode=fill_mode, cval=cval,
                               flip_cols=flip_cols, flip_rows=flip_rows).astype(x.dtype)
    if x.dtype.kind not in "iub":
        raise TypeError(f"apply_affine_transform: images must be real numbers, got dtype {x.dtype}")
    t = ops.affine_warp(x.astype(np.float64), m, order=order, fill_mode=fill_mode, cval=cval, flip_cols=flip_cols,
                        flip_rows=flip_rows)
    if x.dtype.kind == "b":
        return t != 0
    info = np.iinfo(x.dtype)
    t = np.where(t > 0, t + 0.5, (t - 0.5) if x.dtype.kind == "i" else 0.0)
    return np.clip(np.trunc(t), info.min, info.max).astype(x.dtype)


def apply_affine_transform(x, theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, row_axis=1, col_axis=2, channel_axis=0,
                           fill_mode="nearest", cval=0.0, order=1):
    """Rotation by theta degrees, shift by (tx rows, ty columns), shear (degrees) and zoom (zx, zy), composed
    about the image centre, of one 3-D image; fill_mode 'constant' | 'nearest' | 'reflect' | 'wrap' for the
    points outside; order 0 or 1."""
    if np.unique([row_axis, col_axis, channel_axis]).size != 3:
        raise ValueError("'row_axis', 'col_axis', and 'channel_axis' must be distinct")
    actual = {row_axis, col_axis, channel_axis}
    if actual != {0, 1, 2}:
        raise ValueError(f"Invalid axis' indices: {actual - {0, 1, 2}}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError("Input arrays must be multi-channel 2D images.")
    if channel_axis not in (0, 2):
        raise ValueError("Channels are allowed and the first and last dimensions.")
    _check_fill("apply_affine_transform", fill_mode, order)
    h, w = x.shape[row_axis], x.shape[col_axis]
    m = _affine_matrix(theta, tx, ty, shear, zx, zy, h, w, col_axis > row_axis)
    if m is None:
        return x
    # The matrix maps the two spatial axes in array order; the kernel wants them first, channels last.
    spatial = sorted((row_axis, col_axis))
    perm = spatial + [channel_axis]
    out = _warp(np.transpose(x, perm), m, fill_mode, cval, order)
    return np.transpose(out, np.argsort(perm))


def apply_channel_shift(x, intensity, channel_axis=0):
    """Adds intensity to every channel, clipped to the image's own min..max."""
    x = np.asarray(x)
    min_x, max_x = np.min(x), np.max(x)
    return np.clip(x + intensity, min_x, max_x)


def _blend_uint8(img, factor):
    """PIL's ImageEnhance.Brightness on uint8 pixels: float32 product with black, truncated and clipped."""
    v = np.float32(factor) * img.astype(np.float32)
    return np.where(v <= 0, 0, np.where(v >= 255, 255, v)).astype(np.uint8)


def apply_brightness_shift(x, brightness, scale=True):
    """Keras's brightness shift: the image as 8-bit pixels (min-max scaled when `scale` or when its values
    leave 0..255), PIL's Brightness enhance by the factor, back to float (and to the original range when it
    was scaled only because it left 0..255). Pillow's arithmetic, done in numpy."""
    x = np.asarray(x)
    x_min, x_max = np.min(x), np.max(x)
    local_scale = (x_min < 0) or (x_max > 255)
    if x.ndim != 3 or x.shape[2] not in (1, 3, 4):
        raise ValueError(f"apply_brightness_shift: Unsupported image shape {x.shape} (channels_last, 1, 3 or 4 "
                         f"channels)")
    px = to_uint8_image(x, local_scale or scale)
    if x.shape[2] == 1 and np.max(px) > 255:
        raise ValueError("apply_brightness_shift: a single-channel image above 255 needs scale=True")
    u8 = px.astype("uint8")
    out = u8.copy()
    color = slice(0, 3) if x.shape[2] == 4 else slice(None)   # Pillow keeps RGBA's alpha
    out[..., color] = _blend_uint8(u8[..., color], brightness)
    out = out.astype("float32")
    if not scale and local_scale:
        out = out / 255 * (x_max - x_min) + x_min
    return out


def random_rotation(x, rg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                    interpolation_order=1):
    theta = np.random.uniform(-rg, rg)
    return apply_affine_transform(x, theta=theta, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_shift(x, wrg, hrg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                 interpolation_order=1):
    h, w = x.shape[row_axis], x.shape[col_axis]
    tx = np.random.uniform(-hrg, hrg) * h
    ty = np.random.uniform(-wrg, wrg) * w
    return apply_affine_transform(x, tx=tx, ty=ty, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_shear(x, intensity, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                 interpolation_order=1):
    shear = np.random.uniform(-intensity, intensity)
    return apply_affine_transform(x, shear=shear, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_zoom(x, zoom_range, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                interpolation_order=1):
    if len(zoom_range) != 2:
        raise ValueError(f"`zoom_range` should be a tuple or list of two floats. Received: {zoom_range}")
    if zoom_range[0] == 1 and zoom_range[1] == 1:
        zx, zy = 1, 1
    else:
        zx, zy = np.random.uniform(zoom_range[0], zoom_range[1], 2)
    return apply_affine_transform(x, zx=zx, zy=zy, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_channel_shift(x, intensity_range, channel_axis=0):
    intensity = np.random.uniform(-intensity_range, intensity_range)
    return apply_channel_shift(x, intensity, channel_axis=channel_axis)


def random_brightness(x, brightness_range, scale=True):
    if len(brightness_range) != 2:
        raise ValueError(f"`brightness_range should be tuple or list of two floats. Received: {brightness_range}")
    u = np.random.uniform(brightness_range[0], brightness_range[1])
    return apply_brightness_shift(x, u, scale)


# --------------------------------------------------------------------------- the generator
def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_range(name, value, allow_list=False):
    """A non-negative number (or, for shift ranges, a list of numbers); ValueError/TypeError naming it."""
    if _is_number(value):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"ImageDataGenerator: argument '{name}' must be a finite number >= 0, got {value!r}")
        return
    if allow_list and isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0 and \
            all(_is_number(v) and np.isfinite(v) for v in np.ravel(value)):
        return
    kinds = "a number or a list of numbers" if allow_list else "a number"
    raise TypeError(f"ImageDataGenerator: argument '{name}' must be {kinds}, got {value!r}")


class ImageDataGenerator:
    """Real-time image augmentation and standardisation (tf.keras 2's ImageDataGenerator).

    Random transforms per image: rotation_range (degrees), width_shift_range / height_shift_range (fraction
    of the size if < 1, else pixels; a list picks one value), shear_range (degrees), zoom_range (float z for
    [1-z, 1+z], or [lower, upper]), channel_shift_range, brightness_range [lower, upper], horizontal_flip,
    vertical_flip; points outside the input are filled per fill_mode ('constant' with cval, 'nearest',
    'reflect', 'wrap'). Then standardize: preprocessing_function, rescale, samplewise / featurewise centring
    and std normalisation, zca_whitening (featurewise statistics from ``fit``). validation_split reserves the
    first fraction of each class (flow_from_directory) or of the arrays (flow) for subset='validation'."""

    def __init__(self, featurewise_center=False, samplewise_center=False, featurewise_std_normalization=False,
                 samplewise_std_normalization=False, zca_whitening=False, zca_epsilon=1e-6, rotation_range=0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None, shear_range=0.0,
                 zoom_range=0.0, channel_shift_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None, data_format=None,
                 validation_split=0.0, interpolation_order=1, dtype=None):
        data_format = check_data_format("ImageDataGenerator", data_format)
        _check_fill("ImageDataGenerator", fill_mode, interpolation_order)
        for name, value in (("rotation_range", rotation_range), ("shear_range", shear_range),
                            ("channel_shift_range", channel_shift_range), ("zca_epsilon", zca_epsilon)):
            _check_range(name, value)
        for name, value in (("width_shift_range", width_shift_range), ("height_shift_range", height_shift_range)):
            _check_range(name, value, allow_list=True)
        if not _is_number(cval):
            raise TypeError(f"ImageDataGenerator: argument 'cval' must be a number, got {cval!r}")
        if rescale is not None and rescale is not False and not _is_number(rescale):
            raise TypeError(f"ImageDataGenerator: argument 'rescale' must be a number or None, got {rescale!r}")
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError(f"ImageDataGenerator: argument 'preprocessing_function' must be callable, "
                            f"got {preprocessing_function!r}")
        self.featurewise_center = featurewise_center
        self.samplewise_center = samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.zca_whitening = zca_whitening
        self.zca_epsilon = zca_epsilon
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.shear_range = shear_range
        self.zoom_range = zoom_range
        self.channel_shift_range = channel_shift_range
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.dtype = np.dtype(dtype or "float32").name
        self.interpolation_order = interpolation_order
        self.data_format = data_format
        if data_format == "channels_first":
            self.channel_axis, self.row_axis, self.col_axis = 1, 2, 3
        else:
            self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        if validation_split and not (_is_number(validation_split) and 0 < validation_split < 1):
            raise ValueError(f"`validation_split` must be strictly between 0 and 1.  Received: {validation_split}")
        self._validation_split = validation_split
        self.mean = None
        self.std = None
        self.zca_whitening_matrix = None
        if _is_number(zoom_range):
            self.zoom_range = [1 - zoom_range, 1 + zoom_range]
        elif isinstance(zoom_range, (list, tuple)) and len(zoom_range) == 2 and all(map(_is_number, zoom_range)):
            self.zoom_range = [zoom_range[0], zoom_range[1]]
        else:
            raise ValueError(f"`zoom_range` should be a float or a tuple or list of two floats. "
                             f"Received: {zoom_range}")
        if zca_whitening:
            if not featurewise_center:
                self.featurewise_center = True
                warnings.warn("This ImageDataGenerator specifies `zca_whitening`, which overrides setting of "
                              "`featurewise_center`.", stacklevel=2)
            if featurewise_std_normalization:
                self.featurewise_std_normalization = False
                warnings.warn("This ImageDataGenerator specifies `zca_whitening` which overrides setting of"
                              "`featurewise_std_normalization`.", stacklevel=2)
        if featurewise_std_normalization and not featurewise_center:
            self.featurewise_center = True
            warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, which overrides "
                          "setting of `featurewise_center`.", stacklevel=2)
        if samplewise_std_normalization and not samplewise_center:
            self.samplewise_center = True
            warnings.warn("This ImageDataGenerator specifies `samplewise_std_normalization`, which overrides "
                          "setting of `samplewise_center`.", stacklevel=2)
        if brightness_range is not None:
            if not isinstance(brightness_range, (tuple, list)) or len(brightness_range) != 2 or \
                    not all(map(_is_number, brightness_range)):
                raise ValueError(f"`brightness_range should be tuple or list of two floats. "
                                 f"Received: {brightness_range}")
        self.brightness_range = brightness_range

    # ------------------------------------------------------------------ iterators
    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None, save_to_dir=None,
             save_prefix="", save_format="png", ignore_class_split=False, subset=None):
        """An iterator over (x, y) batches of in-memory images x (N, H, W, C), augmented and standardised."""
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
                                  seed=seed, data_format=self.data_format, save_to_dir=save_to_dir,
                                  save_prefix=save_prefix, save_format=save_format,
                                  ignore_class_split=ignore_class_split, subset=subset, dtype=self.dtype)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb", classes=None,
                            class_mode="categorical", batch_size=32, shuffle=True, seed=None, save_to_dir=None,
                            save_prefix="", save_format="png", follow_links=False, subset=None,
                            interpolation="nearest", keep_aspect_ratio=False):
        """An iterator over batches of images read from one subfolder per class of `directory` (class
        indices in sorted folder order), resized to target_size with a Pillow filter, augmented and
        standardised. Prints "Found N images belonging to K classes." as Keras does."""
        return DirectoryIterator(directory, self, target_size=target_size, color_mode=color_mode,
                                 keep_aspect_ratio=keep_aspect_ratio, classes=classes, class_mode=class_mode,
                                 data_format=self.data_format, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 save_to_dir=save_to_dir, save_prefix=save_prefix, save_format=save_format,
                                 follow_links=follow_links, subset=subset, interpolation=interpolation,
                                 dtype=self.dtype)

    # ------------------------------------------------------------------ per-image work
    def standardize(self, x):
        """Applies preprocessing_function, rescale and the normalisations to x (in place where it can, as
        Keras does) and returns it."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, keepdims=True) + 1e-6
        if self.featurewise_center:
            if self.mean is not None:
                x -= self.mean
            else:
                warnings.warn("This ImageDataGenerator specifies `featurewise_center`, but it hasn't been fit on "
                              "any training data. Fit it first by calling `.fit(numpy_data)`.", stacklevel=2)
        if self.featurewise_std_normalization:
            if self.std is not None:
                x /= self.std + 1e-6
            else:
                warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, but it hasn't "
                              "been fit on any training data. Fit it first by calling `.fit(numpy_data)`.",
                              stacklevel=2)
        if self.zca_whitening:
            if self.zca_whitening_matrix is not None:
                flat_x = x.reshape(-1, int(np.prod(x.shape[-3:])))
                x = np.reshape(flat_x @ self.zca_whitening_matrix, x.shape)
            else:
                warnings.warn("This ImageDataGenerator specifies `zca_whitening`, but it hasn't been fit on any "
                              "training data. Fit it first by calling `.fit(numpy_data)`.", stacklevel=2)
        return x

    def get_random_transform(self, img_shape, seed=None):
        """A dict of random transform parameters for one image of img_shape (theta, tx, ty, shear, zx, zy,
        flip_horizontal, flip_vertical, channel_shift_intensity, brightness), drawn from numpy's global
        generator in Keras's order (seeded first when seed is given, as Keras does)."""
        if seed is not None:
            np.random.seed(seed)
        return self._draw_transform(img_shape, np.random)

    def _draw_transform(self, img_shape, rng):
        img_row_axis, img_col_axis = self.row_axis - 1, self.col_axis - 1
        theta = rng.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0
        tx = self._draw_shift(rng, self.height_shift_range, img_shape[img_row_axis])
        ty = self._draw_shift(rng, self.width_shift_range, img_shape[img_col_axis])
        shear = rng.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1, 1
        else:
            zx, zy = rng.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_horizontal = (rng.random() < 0.5) * self.horizontal_flip
        flip_vertical = (rng.random() < 0.5) * self.vertical_flip
        channel_shift_intensity = None
        if self.channel_shift_range != 0:
            channel_shift_intensity = rng.uniform(-self.channel_shift_range, self.channel_shift_range)
        brightness = None
        if self.brightness_range is not None:
            brightness = rng.uniform(self.brightness_range[0], self.brightness_range[1])
        return {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                "flip_horizontal": flip_horizontal, "flip_vertical": flip_vertical,
                "channel_shift_intensity": channel_shift_intensity, "brightness": brightness}

    @staticmethod
    def _draw_shift(rng, shift_range, size):
        if not (shift_range.size if isinstance(shift_range, np.ndarray) else shift_range):
            return 0
        if isinstance(shift_range, (int, np.integer)) or isinstance(shift_range, (list, tuple, np.ndarray)):
            # an int n picks one of 0..n-1 pixels, a list one of its values; then a random sign (Keras)
            t = rng.choice(shift_range)
            t *= rng.choice([-1, 1])
        else:
            t = rng.uniform(-shift_range, shift_range)
        if np.max(shift_range) < 1:
            t *= size
        return t

    def _matrix(self, params, h, w):
        return _affine_matrix(params.get("theta", 0), params.get("tx", 0), params.get("ty", 0),
                              params.get("shear", 0), params.get("zx", 1), params.get("zy", 1), h, w, True)

    def apply_transform(self, x, transform_parameters):
        """Applies a dict of transform parameters (as get_random_transform returns) to one 3-D image."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"apply_transform: x must be one 3-D image, got shape {x.shape}")
        img_row_axis, img_col_axis, img_channel_axis = self.row_axis - 1, self.col_axis - 1, self.channel_axis - 1
        p = transform_parameters
        x = apply_affine_transform(x, p.get("theta", 0), p.get("tx", 0), p.get("ty", 0), p.get("shear", 0),
                                   p.get("zx", 1), p.get("zy", 1), row_axis=img_row_axis, col_axis=img_col_axis,
                                   channel_axis=img_channel_axis, fill_mode=self.fill_mode, cval=self.cval,
                                   order=self.interpolation_order)
        if p.get("channel_shift_intensity") is not None:
            x = apply_channel_shift(x, p["channel_shift_intensity"], img_channel_axis)
        if p.get("flip_horizontal", False):
            x = flip_axis(x, img_col_axis)
        if p.get("flip_vertical", False):
            x = flip_axis(x, img_row_axis)
        if p.get("brightness") is not None:
            x = self._brightness(x, p["brightness"])
        return x

    def _brightness(self, x, brightness):
        # tf.keras hands a channels-first image to array_to_img as if it were channels-last (an error for most
        # shapes); here it is transposed to channels-last and back.
        if self.data_format == "channels_first":
            return apply_brightness_shift(x.transpose(1, 2, 0), brightness, False).transpose(2, 0, 1)
        return apply_brightness_shift(x, brightness, False)

    def random_transform(self, x, seed=None):
        """One image with a random transform applied."""
        params = self.get_random_transform(np.shape(x), seed)
        return self.apply_transform(x, params)

    def _transform_batch(self, batch, rng):
        """Draws and applies one random transform per image of a batch (N, ...) in the generator's data
        format: one warp call for the batch (flips folded in), then the per-image channel and brightness
        shifts. Same values as apply_transform image by image."""
        n = len(batch)
        if n == 0:
            return batch
        params = [self._draw_transform(batch.shape[1:], rng) for _ in range(n)]
        last = self.data_format == "channels_last"
        hwc = batch if last else batch.transpose(0, 2, 3, 1)
        h, w = hwc.shape[1], hwc.shape[2]
        mats = [self._matrix(p, h, w) for p in params]
        flip_c = np.array([bool(p["flip_horizontal"]) for p in params])
        flip_r = np.array([bool(p["flip_vertical"]) for p in params])
        if any(m is not None for m in mats) or flip_c.any() or flip_r.any():
            identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
            stacked = np.stack([identity if m is None else m for m in mats])
            hwc = _warp(np.ascontiguousarray(hwc), stacked, self.fill_mode, self.cval, self.interpolation_order,
                        flip_c, flip_r)
        for i, p in enumerate(params):
            if p["channel_shift_intensity"] is not None:
                hwc[i] = apply_channel_shift(hwc[i], p["channel_shift_intensity"])
            if p["brightness"] is not None:
                hwc[i] = apply_brightness_shift(hwc[i], p["brightness"], False)
        return hwc if last else hwc.transpose(0, 3, 1, 2)

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Computes the featurewise statistics (mean, std, ZCA matrix) that standardize uses, from sample
        images x (N, H, W, C); augment: over `rounds` randomly transformed copies."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError("Input to `.fit()` should have rank 4. Got array with shape: " + str(x.shape))
        if x.shape[self.channel_axis] not in {1, 3, 4}:
            warnings.warn(f'Expected input to be images (as Numpy array) following the data format convention '
                          f'"{self.data_format}" (channels on axis {self.channel_axis}), i.e. expected either 1, 3 '
                          f'or 4 channels on axis {self.channel_axis}. However, it was passed an array with shape '
                          f'{x.shape} ({x.shape[self.channel_axis]} channels).', stacklevel=2)
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"ImageDataGenerator.fit: argument 'rounds' must be a positive int, got {rounds!r}")
        if seed is not None:
            np.random.seed(seed)
        x = np.copy(x)
        if self.rescale:
            x *= self.rescale
        if augment:
            ax = np.zeros(tuple([rounds * x.shape[0]] + list(x.shape)[1:]), dtype=self.dtype)
            for r in range(rounds):
                for i in range(x.shape[0]):
                    ax[i + r * x.shape[0]] = self.random_transform(x[i])
            x = ax
        broadcast_shape = [1, 1, 1]
        broadcast_shape[self.channel_axis - 1] = x.shape[self.channel_axis]
        if self.featurewise_center:
            self.mean = np.reshape(np.mean(x, axis=(0, self.row_axis, self.col_axis)), broadcast_shape)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.reshape(np.std(x, axis=(0, self.row_axis, self.col_axis)), broadcast_shape)
            x /= self.std + 1e-6
        if self.zca_whitening:
            n = len(x)
            flat_x = np.reshape(x, (n, -1))
            u, s, _ = np.linalg.svd(flat_x.T, full_matrices=False)
            s_inv = np.sqrt(n) / (s + self.zca_epsilon)
            self.zca_whitening_matrix = (u * s_inv).dot(u.T)


# --------------------------------------------------------------------------- iterators
def _check_batch_size(where, batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{where}: argument 'batch_size' must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _check_seed(where, seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or
                             not 0 <= seed < 2 ** 32):
        raise ValueError(f"{where}: argument 'seed' must be None or an int in [0, 2**32), got {seed!r}")
    return seed


class Iterator(Sequence):
    """Base of the image iterators: a Sequence of len ceil(n / batch_size) batches, and an endless iterator
    (next()) like Keras's. Shuffling (index_array) and the random transforms follow Keras: with a seed,
    batch k draws from numpy's legacy generator seeded with seed + (batches drawn so far); __getitem__ is
    thread-safe (each call draws from its own generator)."""

    white_list_formats = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")

    def __init__(self, n, batch_size, shuffle, seed):
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.batch_index = 0
        self.total_batches_seen = 0
        self.lock = threading.Lock()
        self.index_array = None
        self.index_generator = self._flow_index()
        self._last_rng = None

    def _rng(self):
        """The generator for the next batch (call under the lock): numpy's legacy generator seeded as Keras
        seeds the global one, or the global one when there is no seed."""
        if self.seed is None:
            return np.random
        rng = np.random.RandomState(self.seed + self.total_batches_seen)
        self._last_rng = rng
        return rng

    def _set_index_array(self, rng=None):
        rng = rng if rng is not None else (self._last_rng if self._last_rng is not None else np.random)
        self.index_array = np.arange(self.n)
        if self.shuffle:
            self.index_array = rng.permutation(self.n)

    def __getitem__(self, idx):
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}: batch index must be an int, got {type(idx).__name__}")
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise ValueError(f"Asked to retrieve element {idx}, but the Sequence has length {len(self)}")
        with self.lock:
            rng = self._rng()
            self.total_batches_seen += 1
            if self.index_array is None:
                self._set_index_array(rng)
            index_array = self.index_array[self.batch_size * idx:self.batch_size * (idx + 1)]
        return self._get_batches_of_transformed_samples(index_array, rng)

    def __len__(self):
        return (self.n + self.batch_size - 1) // self.batch_size

    def on_epoch_end(self):
        with self.lock:
            self._set_index_array()

    def reset(self):
        self.batch_index = 0

    def _flow_index(self):
        self.reset()
        while True:
            rng = self._rng()
            if self.batch_index == 0:
                self._set_index_array(rng)
            current_index = (self.batch_index * self.batch_size) % self.n if self.n else 0
            if self.n > current_index + self.batch_size:
                self.batch_index += 1
            else:
                self.batch_index = 0
            self.total_batches_seen += 1
            yield self.index_array[current_index:current_index + self.batch_size], rng

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self):
        """The next batch, cycling through the data forever (reshuffled at each pass)."""
        with self.lock:
            index_array, rng = next(self.index_generator)
        return self._get_batches_of_transformed_samples(index_array, rng)

    def _get_batches_of_transformed_samples(self, index_array, rng=None):
        raise NotImplementedError

    def _save_batch(self, batch_x, index_array, rng, hash_range):
        for i, j in enumerate(index_array):
            img = array_to_img(batch_x[i], self.data_format, scale=True)
            fname = f"{self.save_prefix}_{j}_{rng.randint(hash_range)}.{self.save_format}"
            img.save(os.path.join(self.save_to_dir, fname))


def _iter_valid_files(directory, white_list_formats, follow_links):
    """(root, filename) of the whitelisted files under directory, walked in Keras's order."""
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda t: t[0]):
        for fname in sorted(files):
            if fname.lower().endswith(".tiff"):
                warnings.warn('Using ".tiff" files with multiple bands will cause distortion. Please verify your '
                              'output.', stacklevel=4)
            if fname.lower().endswith(white_list_formats):
                yield root, fname


def _list_valid_filenames_in_directory(directory, white_list_formats, split, class_indices, follow_links):
    """(classes, filenames relative to directory's parent) of one class folder; split takes a fraction."""
    dirname = os.path.basename(directory)
    valid_files = list(_iter_valid_files(directory, white_list_formats, follow_links))
    if split:
        num_files = len(valid_files)
        valid_files = valid_files[int(split[0] * num_files):int(split[1] * num_files)]
    classes, filenames = [], []
    for root, fname in valid_files:
        classes.append(class_indices[dirname])
        filenames.append(os.path.join(dirname, os.path.relpath(os.path.join(root, fname), directory)))
    return classes, filenames


class DirectoryIterator(Iterator):
    """Batches of images read from class subfolders of a directory (flow_from_directory).

    Attributes as Keras: directory, class_indices {name: index} (sorted folder names unless `classes` is
    given), classes (int32 label per sample), filenames (paths relative to directory, in Keras's order),
    filepaths, samples == n, num_classes, batch_size, image_shape, index_array. Batches are float32
    (N, H, W, C) and labels by class_mode: 'categorical' one-hot, 'binary' / 'sparse' class indices as
    float32, 'input' the images again, None no labels. A file that Pillow cannot read is listed like any
    other and raises PIL.UnidentifiedImageError / OSError naming it when its batch is loaded, as in tf.keras 2.
    """

    allowed_class_modes = {"categorical", "binary", "sparse", "input", None}

    def __init__(self, directory, image_data_generator, target_size=(256, 256), color_mode="rgb", classes=None,
                 class_mode="categorical", batch_size=32, shuffle=True, seed=None, data_format=None,
                 save_to_dir=None, save_prefix="", save_format="png", follow_links=False, subset=None,
                 interpolation="nearest", keep_aspect_ratio=False, dtype=None):
        where = "flow_from_directory"
        data_format = check_data_format(where, data_format)
        if not isinstance(directory, (str, bytes, os.PathLike)):
            raise TypeError(f"{where}: argument 'directory' must be a path, got {type(directory).__name__}")
        directory = os.fsdecode(directory)
        self.target_size = check_size(where, "target_size", target_size)
        if color_mode not in {"rgb", "rgba", "grayscale"}:
            raise ValueError(f'{where}: Invalid color mode: {color_mode!r}; expected "rgb", "rgba", or "grayscale".')
        if class_mode not in self.allowed_class_modes:
            raise ValueError(f"{where}: Invalid class_mode: {class_mode!r}; expected one of: "
                             f"'categorical', 'binary', 'sparse', 'input', None")
        if interpolation not in PIL_INTERPOLATIONS:
            raise ValueError(f"{where}: Invalid interpolation method {interpolation!r} specified. Supported methods "
                             f"are {', '.join(PIL_INTERPOLATIONS)}")
        batch_size = _check_batch_size(where, batch_size)
        seed = _check_seed(where, seed)
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f'{where}: Invalid subset name: {subset!r}; expected "training" or "validation"')
            validation_split = image_data_generator._validation_split if image_data_generator else 0
            if not validation_split:
                raise ValueError(f"{where}: subset={subset!r} needs a validation fraction: "
                                 f"ImageDataGenerator(validation_split=...)")
            self.split = (0, validation_split) if subset == "validation" else (validation_split, 1)
        else:
            self.split = None
        self.subset = subset
        if not os.path.exists(directory):
            raise FileNotFoundError(f"{where}: directory '{directory}' does not exist")
        if not os.path.isdir(directory):
            raise NotADirectoryError(f"{where}: '{directory}' is not a directory")
        pil_image()   # Pillow is needed to read the files: say so now rather than at the first batch

        self.image_data_generator = image_data_generator
        self.keep_aspect_ratio = keep_aspect_ratio
        self.color_mode = color_mode
        self.data_format = data_format
        channels = {"rgba": 4, "rgb": 3, "grayscale": 1}[color_mode]
        self.image_shape = (self.target_size + (channels,) if data_format == "channels_last"
                            else (channels,) + self.target_size)
        self.save_to_dir, self.save_prefix, self.save_format = save_to_dir, save_prefix, save_format
        self.interpolation = interpolation
        self.directory = directory
        self.class_mode = class_mode
        self.dtype = np.dtype(dtype or "float32").name

        if not classes:
            classes = [d for d in sorted(os.listdir(directory)) if os.path.isdir(os.path.join(directory, d))]
        else:
            if isinstance(classes, (str, bytes)):
                raise TypeError(f"{where}: argument 'classes' must be a list of folder names, got {classes!r}")
            classes = list(classes)
            missing = [c for c in classes if not os.path.isdir(os.path.join(directory, c))]
            if missing:
                raise ValueError(f"{where}: class folder(s) {missing} not found in '{directory}'")
        self.num_classes = len(classes)
        self.class_indices = dict(zip(classes, range(len(classes))))
        self.filenames = []
        labels = []
        for subdir in classes:
            c, f = _list_valid_filenames_in_directory(os.path.join(directory, subdir), self.white_list_formats,
                                                      self.split, self.class_indices, follow_links)
            labels.extend(c)
            self.filenames.extend(f)
        self.samples = len(self.filenames)
        self.classes = np.array(labels, dtype="int32")
        print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        if self.samples == 0:
            loose = [f for f in os.listdir(directory) if f.lower().endswith(self.white_list_formats)]
            hint = (f"; the {len(loose)} image(s) directly in it are not read: flow_from_directory expects one "
                    f"subfolder per class (for unlabelled images, one subfolder and class_mode=None)") if loose else ""
            what = f" for subset '{subset}'" if subset else ""
            raise ValueError(f"{where}: found no images{what} in '{directory}' ({self.num_classes} class "
                             f"folder(s); formats {', '.join(self.white_list_formats)}){hint}")
        self._filepaths = [os.path.join(self.directory, fname) for fname in self.filenames]
        super().__init__(self.samples, batch_size, shuffle, seed)

    @property
    def filepaths(self):
        return self._filepaths

    @property
    def labels(self):
        return self.classes

    @property
    def sample_weight(self):
        return None

    def _load(self, path):
        img = load_img(path, color_mode=self.color_mode, target_size=self.target_size,
                       interpolation=self.interpolation, keep_aspect_ratio=self.keep_aspect_ratio)
        x = img_to_array(img, data_format="channels_last", dtype=self.dtype)
        img.close()
        if x.shape != self.target_size + (self._channels(),):
            raise ValueError(f"flow_from_directory: image '{path}' decoded to shape {x.shape}, expected "
                             f"{self.target_size + (self._channels(),)} (height, width, channels)")
        return x

    def _get_batches_of_transformed_samples(self, index_array, rng=None):
        rng = rng if rng is not None else np.random
        filepaths = self.filepaths
        hwc = np.empty((len(index_array),) + self.target_size + (self._channels(),), dtype=self.dtype)
        for i, j in enumerate(index_array):
            hwc[i] = self._load(filepaths[j])
        batch_x = hwc if self.data_format == "channels_last" else hwc.transpose(0, 3, 1, 2)
        gen = self.image_data_generator
        if gen:
            batch_x = gen._transform_batch(batch_x, rng)
            out = np.empty((len(index_array),) + self.image_shape, dtype=self.dtype)
            for i in range(len(index_array)):
                out[i] = gen.standardize(batch_x[i])
            batch_x = out
        else:
            batch_x = np.ascontiguousarray(batch_x)
        if self.save_to_dir:
            self._save_batch(batch_x, index_array, rng, int(1e7))
        if self.class_mode == "input":
            batch_y = batch_x.copy()
        elif self.class_mode in {"binary", "sparse"}:
            batch_y = self.classes[index_array].astype(self.dtype)
        elif self.class_mode == "categorical":
            batch_y = np.zeros((len(batch_x), len(self.class_indices)), dtype=self.dtype)
            batch_y[np.arange(len(batch_x)), self.classes[index_array]] = 1.0
        else:
            return batch_x
        return batch_x, batch_y

    def _channels(self):
        return self.image_shape[-1] if self.data_format == "channels_last" else self.image_shape[0]


class NumpyArrayIterator(Iterator):
    """Batches of augmented in-memory images (ImageDataGenerator.flow): x (N, H, W, C) (or (x, [extra
    arrays]) whose extras are batched alongside), optional y and sample_weight."""

    def __init__(self, x, y, image_data_generator, batch_size=32, shuffle=False, sample_weight=None, seed=None,
                 data_format=None, save_to_dir=None, save_prefix="", save_format="png", subset=None,
                 ignore_class_split=False, dtype=None):
        where = "flow"
        data_format = check_data_format(where, data_format)
        self.dtype = np.dtype(dtype or "float32").name
        batch_size = _check_batch_size(where, batch_size)
        seed = _check_seed(where, seed)
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(f"{where}: x as a tuple must be (images, extra arrays), got {len(x)} items")
            x_misc = [np.asarray(x[1])] if not isinstance(x[1], list) else [np.asarray(xx) for xx in x[1]]
            x = x[0]
            for xx in x_misc:
                if len(x) != len(xx):
                    raise ValueError(f"All of the arrays in `x` should have the same length. Found a pair with: "
                                     f"len(x[0]) = {len(x)}, len(x[?]) = {len(xx)}")
        else:
            x_misc = []
        if y is not None and len(x) != len(y):
            raise ValueError(f"`x` (images tensor) and `y` (labels) should have the same length. Found: "
                             f"x.shape = {np.asarray(x).shape}, y.shape = {np.asarray(y).shape}")
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError(f"`x` (images tensor) and `sample_weight` should have the same length. Found: "
                             f"x.shape = {np.asarray(x).shape}, sample_weight.shape = {np.asarray(sample_weight).shape}")
        if subset is not None:
            if subset not in {"training", "validation"}:
                raise ValueError(f'Invalid subset name: {subset}; expected "training" or "validation".')
            validation_split = image_data_generator._validation_split
            if not validation_split:
                raise ValueError(f"{where}: subset={subset!r} needs a validation fraction: "
                                 f"ImageDataGenerator(validation_split=...)")
            split_idx = int(len(x) * validation_split)
            if y is not None and not ignore_class_split and \
                    not np.array_equal(np.unique(y[:split_idx]), np.unique(y[split_idx:])):
                raise ValueError("Training and validation subsets have different number of classes after the "
                                 "split. If your numpy arrays are sorted by the label, you might want to shuffle "
                                 "them.")
            sl = slice(None, split_idx) if subset == "validation" else slice(split_idx, None)
            x = x[sl]
            x_misc = [np.asarray(xx[sl]) for xx in x_misc]
            if y is not None:
                y = y[sl]
            if sample_weight is not None:
                sample_weight = sample_weight[sl]
        self.x = np.asarray(x, dtype=self.dtype)
        self.x_misc = x_misc
        if self.x.ndim != 4:
            raise ValueError(f"Input data in `NumpyArrayIterator` should have rank 4. You passed an array with "
                             f"shape {self.x.shape}")
        channels_axis = 3 if data_format == "channels_last" else 1
        if self.x.shape[channels_axis] not in {1, 3, 4}:
            warnings.warn(f'NumpyArrayIterator is set to use the data format convention "{data_format}" (channels '
                          f'on axis {channels_axis}), i.e. expected either 1, 3, or 4 channels on axis '
                          f'{channels_axis}. However, it was passed an array with shape {self.x.shape} '
                          f'({self.x.shape[channels_axis]} channels).', stacklevel=3)
        self.y = np.asarray(y) if y is not None else None
        self.sample_weight = np.asarray(sample_weight) if sample_weight is not None else None
        self.image_data_generator = image_data_generator
        self.data_format = data_format
        self.save_to_dir, self.save_prefix, self.save_format = save_to_dir, save_prefix, save_format
        super().__init__(self.x.shape[0], batch_size, shuffle, seed)

    def _get_batches_of_transformed_samples(self, index_array, rng=None):
        rng = rng if rng is not None else np.random
        gen = self.image_data_generator
        batch_x = gen._transform_batch(self.x[index_array], rng)
        out = np.empty((len(index_array),) + self.x.shape[1:], dtype=self.dtype)
        for i in range(len(index_array)):
            out[i] = gen.standardize(batch_x[i])
        batch_x = out
        if self.save_to_dir:
            self._save_batch(batch_x, index_array, rng, int(1e4))
        batch_x_miscs = [xx[index_array] for xx in self.x_misc]
        output = (batch_x if not batch_x_miscs else [batch_x] + batch_x_miscs,)
        if self.y is None:
            return output[0]
        output += (self.y[index_array],)
        if self.sample_weight is not None:
            output += (self.sample_weight[index_array],)
        return output
