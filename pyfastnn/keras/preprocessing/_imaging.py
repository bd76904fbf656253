"""Image files and arrays: Pillow decodes and encodes (the one place that imports it, lazily — an optional
dependency, `pip install "pyfastnn[image]"`), and TensorFlow's resize semantics run on pyfastnn's warp kernel.
keras.utils.load_img / img_to_array / array_to_img / save_img with tf.keras 2's behaviour."""
from __future__ import annotations

import importlib
import io
import os
import pathlib
import warnings

import numpy as np

from ... import ops

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img", "smart_resize", "pil_image", "read_image",
           "resize", "resize_with_pad", "crop_box", "PIL_INTERPOLATIONS", "TF_INTERPOLATIONS", "check_data_format",
           "check_size"]

_PIL = None
_PIL_MISSING = None


def pil_image():
    """The PIL.Image module, imported on first use; ImportError naming the extra to install when Pillow is
    absent."""
    global _PIL, _PIL_MISSING
    if _PIL is None:
        try:
            _PIL = importlib.import_module("PIL.Image")
        except ImportError as exc:
            _PIL_MISSING = exc
            raise ImportError("pyfastnn.keras image loading needs Pillow, which is not installed: "
                              "pip install \"pyfastnn[image]\" (or pip install Pillow)") from exc
    return _PIL


# Keras's names for Pillow's resampling filters (load_img, flow_from_directory).
PIL_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


def _pil_filter(name):
    res = getattr(pil_image(), "Resampling", pil_image())
    return {"nearest": res.NEAREST, "bilinear": res.BILINEAR, "bicubic": res.BICUBIC, "hamming": res.HAMMING,
            "box": res.BOX, "lanczos": res.LANCZOS}[name]


def check_data_format(where, data_format):
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{where}: argument 'data_format' must be 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format


def _decode_failure(path, exc):
    """Pillow's error for a file it cannot read, re-raised with the file's name (Pillow reads from memory and
    names none): UnidentifiedImageError stays one, other failures become OSError."""
    Image = pil_image()
    msg = f"cannot read image file '{path}': {exc}"
    if isinstance(exc, Image.UnidentifiedImageError):
        return Image.UnidentifiedImageError(f"cannot identify image file '{path}' (not an image, or a format "
                                            f"Pillow cannot decode)")
    if isinstance(exc, Image.DecompressionBombError):
        return Image.DecompressionBombError(msg)
    return OSError(msg)


def load_img(path, grayscale=False, color_mode="rgb", target_size=None, interpolation="nearest",
             keep_aspect_ratio=False):
    """A PIL image from a file path (str, bytes, pathlib.Path) or an io.BytesIO, converted to color_mode
    ('rgb', 'rgba', 'grayscale') and resized to target_size (height, width) with a Pillow filter
    (keep_aspect_ratio: center-crop to the target's aspect ratio first). Unreadable files raise
    PIL.UnidentifiedImageError / OSError naming the file."""
    where = "load_img"
    if grayscale:
        warnings.warn('grayscale is deprecated. Please use color_mode = "grayscale"', stacklevel=2)
        color_mode = "grayscale"
    if color_mode not in ("grayscale", "rgb", "rgba"):
        raise ValueError(f'{where}: color_mode must be "grayscale", "rgb", or "rgba", got {color_mode!r}')
    if target_size is not None:
        target_size = check_size(where, "target_size", target_size)
        if interpolation not in PIL_INTERPOLATIONS:
            raise ValueError(f"{where}: Invalid interpolation method {interpolation!r} specified. Supported "
                             f"methods are {', '.join(PIL_INTERPOLATIONS)}")
    Image = pil_image()
    if isinstance(path, io.BytesIO):
        name, data = "<BytesIO>", path
    elif isinstance(path, (pathlib.Path, bytes, str)) or isinstance(path, os.PathLike):
        name = os.fsdecode(path)
        with open(path, "rb") as f:
            data = io.BytesIO(f.read())
    else:
        raise TypeError(f"{where}: path should be path-like or io.BytesIO, not {type(path)}")
    try:
        img = Image.open(data)
        if color_mode == "grayscale":
            if img.mode not in ("L", "I;16", "I"):
                img = img.convert("L")
        elif color_mode == "rgba":
            if img.mode != "RGBA":
                img = img.convert("RGBA")
        elif img.mode != "RGB":
            img = img.convert("RGB")
        if target_size is not None:
            width_height = (target_size[1], target_size[0])
            if img.size != width_height:
                resample = _pil_filter(interpolation)
                if keep_aspect_ratio:
                    width, height = img.size
                    crop_height = min(height, (width * width_height[1]) // width_height[0])
                    crop_width = min(width, (height * width_height[0]) // width_height[1])
                    h0, w0 = (height - crop_height) // 2, (width - crop_width) // 2
                    img = img.resize(width_height, resample, box=[w0, h0, w0 + crop_width, h0 + crop_height])
                else:
                    img = img.resize(width_height, resample)
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _decode_failure(name, exc) from exc
    return img


def read_image(path, mode):
    """The pixels of an image file as uint8 (H, W, C) in Pillow mode 'RGB', 'RGBA' or 'L' (first frame of an
    animation); unreadable files raise PIL.UnidentifiedImageError / OSError naming the file."""
    Image = pil_image()
    try:
        with open(path, "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
        if img.mode != mode:
            img = img.convert(mode)
        x = np.asarray(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _decode_failure(os.fsdecode(path), exc) from exc
    return x[..., None] if x.ndim == 2 else x


def check_size(where, name, size):
    """(height, width) as two positive ints; TypeError/ValueError naming the argument otherwise."""
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2 or \
            not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size):
        raise TypeError(f"{where}: argument '{name}' must be a tuple of two ints (height, width), got {size!r}")
    if min(size) < 1:
        raise ValueError(f"{where}: argument '{name}' must be positive (height, width), got {tuple(size)}")
    return int(size[0]), int(size[1])


def img_to_array(img, data_format=None, dtype=None):
    """A PIL image as a numpy array (H, W, C) (or (C, H, W) with data_format='channels_first'), float32 by
    default; grayscale images get a channel axis."""
    data_format = check_data_format("img_to_array", data_format)
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)
    elif x.ndim == 2:
        x = x.reshape((1,) + x.shape if data_format == "channels_first" else x.shape + (1,))
    else:
        raise ValueError(f"img_to_array: Unsupported image shape: {x.shape}")
    return x


def to_uint8_image(x, scale):
    """array_to_img's pixel conversion without Pillow: (H, W, C) values, min-max scaled to 0..255 when scale,
    truncated to uint8 as numpy's astype does."""
    x = np.asarray(x, dtype="float32")
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    return x


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A PIL image from a 3-D array: 4 channels RGBA, 3 RGB, 1 grayscale ('L', or 'I' above 255); scale maps
    the array's min..max onto 0..255."""
    data_format = check_data_format("array_to_img", data_format)
    Image = pil_image()
    x = np.asarray(x, dtype=dtype or "float32")
    if x.ndim != 3:
        raise ValueError(f"array_to_img: Expected image array to have rank 3 (single image). Got array with "
                         f"shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    x = to_uint8_image(x, scale) if scale else x
    if x.shape[2] == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if x.shape[2] == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if x.shape[2] == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"array_to_img: Unsupported channel number: {x.shape[2]}")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Writes a 3-D array as an image file (format from file_format or the file name)."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format in ("jpg", "jpeg"):
        warnings.warn("The JPG format does not support RGBA images, converting to RGB.", stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


# --------------------------------------------------------------------------- TensorFlow's resize
TF_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area")


def _bound(i, n):
    return np.clip(i, 0, n - 1)


def _area_weights(n_in, n_out):
    """(n_out, n_in) weights of TensorFlow's resize_area along one axis: each output cell averages the input
    cells its box [o*s, (o+1)*s) overlaps, by overlap length (float32, as TensorFlow computes them)."""
    f32 = np.float32
    s = f32(n_in) / f32(n_out)
    w = np.zeros((n_out, n_in), np.float32)
    for o in range(n_out):
        lo, hi = f32(o) * s, f32(o + 1) * s
        for i in range(int(np.floor(lo)), int(np.ceil(hi))):
            part = (min(f32(i + 1), hi) - max(f32(i), lo))
            w[o, _bound(i, n_in)] += part
    return w / s


_CUBIC_TABLE = None


def _cubic_weights(n_in, n_out):
    """(n_out, n_in) weights of TensorFlow 2's bicubic resize (Keys a=-0.5 from a 1024-step table, half-pixel
    centres, taps outside the image dropped and the rest renormalised)."""
    global _CUBIC_TABLE
    size = 1 << 10
    if _CUBIC_TABLE is None:
        a = -0.5
        x = (np.arange(size + 1) * 1.0 / size).astype(np.float32)
        t0 = ((a + 2) * x - (a + 3)) * x * x + 1
        x1 = x + np.float32(1.0)
        t1 = ((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a
        _CUBIC_TABLE = np.stack([t0, t1], axis=1).astype(np.float32)
    f32 = np.float32
    s = f32(n_in) / f32(n_out)
    w = np.zeros((n_out, n_in), np.float32)
    for o in range(n_out):
        loc = (f32(o) + f32(0.5)) * s - f32(0.5)
        base = int(np.floor(loc))
        off = int(np.rint((loc - f32(base)) * f32(size)))
        taps = [(base - 1, _CUBIC_TABLE[off, 1]), (base, _CUBIC_TABLE[off, 0]),
                (base + 1, _CUBIC_TABLE[size - off, 0]), (base + 2, _CUBIC_TABLE[size - off, 1])]
        taps = [(i, wt) for i, wt in taps if 0 <= i < n_in]
        total = f32(sum(wt for _, wt in taps))
        for i, wt in taps:
            w[o, i] += wt / total if abs(total) >= 1000 * np.finfo(np.float32).tiny else wt
    return w


def resize(x, size, interpolation="bilinear"):
    """tf.image.resize on one (H, W, C) image, float32 out, antialias off: 'bilinear' (half-pixel centres) on the
    warp kernel, 'nearest' by TensorFlow's float32 index rule, 'bicubic' and 'area' as separable weight
    matrices with TensorFlow's weights."""
    x = np.asarray(x, dtype=np.float32)
    h, w = x.shape[:2]
    oh, ow = size
    if interpolation in ("bicubic", "area"):
        make = _area_weights if interpolation == "area" else _cubic_weights
        wy, wx = make(h, oh), make(w, ow)
        return np.einsum("oh,hwc,pw->opc", wy, x, wx, optimize=True).astype(np.float32)
    if (h, w) == (oh, ow):
        return x.copy()
    if interpolation == "nearest":
        # TensorFlow's float32 arithmetic: rounding ties decide which pixel is picked when upsampling.
        f32 = np.float32
        rows = np.minimum(np.floor((np.arange(oh, dtype=f32) + f32(0.5)) * (f32(h) / f32(oh))), h - 1)
        cols = np.minimum(np.floor((np.arange(ow, dtype=f32) + f32(0.5)) * (f32(w) / f32(ow))), w - 1)
        return x[rows.astype(np.intp)][:, cols.astype(np.intp)]
    sh, sw = h / oh, w / ow
    # input = (out + 0.5) * scale - 0.5; the warp clamps taps at the edges as TensorFlow does.
    m = np.array([[sh, 0.0, 0.5 * sh - 0.5], [0.0, sw, 0.5 * sw - 0.5]])
    return ops.affine_warp(x, m, output_size=(oh, ow), order=1, fill_mode="nearest")


def smart_resize(x, size, interpolation="bilinear"):
    """Resizes (H, W, C) or (N, H, W, C) images to size (height, width) without distorting the aspect ratio:
    the largest centred crop of the target's ratio, then resize (keras.preprocessing.image.smart_resize)."""
    size = check_size("smart_resize", "size", size)
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"smart_resize: Expected an image array with shape `(height, width, channels)`, or "
                         f"`(batch_size, height, width, channels)`, but got input with incorrect rank, of shape "
                         f"{x.shape}.")
    height, width = x.shape[-3], x.shape[-2]
    crop = crop_box(height, width, size)
    if x.ndim == 4:
        return np.stack([_crop_resize(img, crop, size, interpolation) for img in x])
    return _crop_resize(x, crop, size, interpolation)


def crop_box(height, width, size):
    """TensorFlow's smart_resize crop (float32 arithmetic, truncated): (top, left, crop_h, crop_w)."""
    th, tw = size
    f32 = np.float32
    crop_h = min(height, int(f32(width * th) / f32(tw)))
    crop_w = min(width, int(f32(height * tw) / f32(th)))
    return int(f32(height - crop_h) / f32(2)), int(f32(width - crop_w) / f32(2)), crop_h, crop_w


def _crop_resize(img, crop, size, interpolation):
    top, left, ch, cw = crop
    return resize(img[top:top + ch, left:left + cw], size, interpolation)


def resize_with_pad(img, size, interpolation):
    """tf.image.resize_with_pad: the largest resize that fits, centred on a zero canvas."""
    height, width = img.shape[:2]
    th, tw = size
    f32 = np.float32
    ratio = max(f32(width) / f32(tw), f32(height) / f32(th))
    rh, rw = f32(height) / ratio, f32(width) / ratio
    out_h, out_w = max(1, int(np.floor(rh))), max(1, int(np.floor(rw)))
    top = max(0, int(np.floor((f32(th) - rh) / f32(2))))
    left = max(0, int(np.floor((f32(tw) - rw) / f32(2))))
    resized = resize(img, (out_h, out_w), interpolation)
    out = np.zeros((th, tw, img.shape[2]), np.float32)
    out[top:top + out_h, left:left + out_w] = resized[:th - top, :tw - left]
    return out
