"""Times the image-augmentation pipeline: the affine warp of a batch of 32 images of 150x150x3 by
pyfastnn's kernel against the alternatives (scipy.ndimage per channel, as Keras does; Pillow's
Image.transform), and a whole flow_from_directory batch (JPEG decode + resize + the Keras tutorial's
augmentations) against tf.keras 2 when installed.

    python bench/image_pipeline.py [--threads N] [--repeats R]
"""
import argparse
import io
import os
import sys
import tempfile
import time

import numpy as np


def best_ms(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def tutorial_matrices(n, h, w, seed=0):
    from pyfastnn.keras.preprocessing.image import ImageDataGenerator
    gen = ImageDataGenerator(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                             zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")
    rng = np.random.RandomState(seed)
    params = [gen._draw_transform((h, w, 3), rng) for _ in range(n)]
    return np.stack([gen._matrix(p, h, w) for p in params])


def bench_warp(repeats):
    import pyfastnn
    from pyfastnn import ops
    rng = np.random.default_rng(0)
    x = (rng.random((32, 150, 150, 3)) * 255).astype(np.float32)
    mats = tutorial_matrices(32, 150, 150)
    rows = []
    for n in sorted({1, pyfastnn.get_num_threads()}):
        before = pyfastnn.get_num_threads()
        pyfastnn.set_num_threads(n)
        rows.append((f"pyfastnn ops.affine_warp, {n} thread(s)",
                     best_ms(lambda: ops.affine_warp(x, mats, fill_mode="nearest"), repeats * 4)))
        pyfastnn.set_num_threads(before)
    try:
        from scipy import ndimage

        def scipy_warp():
            for i in range(32):
                np.stack([ndimage.affine_transform(x[i, ..., k], mats[i, :, :2], mats[i, :, 2], order=1,
                                                   mode="nearest") for k in range(3)], axis=-1)
        rows.append(("scipy.ndimage.affine_transform per channel (Keras)", best_ms(scipy_warp, max(1, repeats // 2))))
    except ImportError:
        pass
    try:
        from PIL import Image

        def pil_data(m):   # Pillow maps output (x=col, y=row) to input (col, row); nearest/constant edges only
            return (m[1, 1], m[1, 0], m[1, 2], m[0, 1], m[0, 0], m[0, 2])

        def pil_float():
            for i in range(32):
                for k in range(3):
                    Image.fromarray(x[i, ..., k], "F").transform((150, 150), Image.Transform.AFFINE,
                                                                 pil_data(mats[i]), Image.Resampling.BILINEAR)

        def pil_uint8():
            for i in range(32):
                np.asarray(Image.fromarray(x[i].astype(np.uint8), "RGB").transform(
                    (150, 150), Image.Transform.AFFINE, pil_data(mats[i]), Image.Resampling.BILINEAR), np.float32)
        rows.append(("Pillow Image.transform, float32 per channel", best_ms(pil_float, repeats)))
        rows.append(("Pillow Image.transform, uint8 RGB (lossy)", best_ms(pil_uint8, repeats)))
    except ImportError:
        pass
    return rows


def make_jpegs(root, count=64):
    from PIL import Image
    from sklearn.datasets import load_sample_images
    photos = load_sample_images().images
    rng = np.random.default_rng(1)
    for cls in ("cats", "dogs"):
        os.makedirs(os.path.join(root, cls), exist_ok=True)
    for i in range(count):
        photo = photos[i % 2]
        h, w = int(rng.integers(300, 420)), int(rng.integers(350, 500))
        top, left = int(rng.integers(0, photo.shape[0] - h)), int(rng.integers(0, photo.shape[1] - w))
        Image.fromarray(photo[top:top + h, left:left + w]).save(
            os.path.join(root, ("cats", "dogs")[i % 2], f"{i:04d}.jpg"), quality=85)


def bench_batches(repeats):
    import contextlib
    from pyfastnn.keras.preprocessing.image import ImageDataGenerator
    aug = dict(rescale=1. / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
               zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        make_jpegs(root)
        with contextlib.redirect_stdout(io.StringIO()):
            it = ImageDataGenerator(**aug).flow_from_directory(root, target_size=(150, 150), batch_size=32,
                                                               class_mode="binary", seed=1)
            plain = ImageDataGenerator(rescale=1. / 255).flow_from_directory(root, target_size=(150, 150),
                                                                            batch_size=32, class_mode="binary")
        rows.append(("pyfastnn flow_from_directory batch, decode + resize only", best_ms(lambda: plain[0], repeats)))
        rows.append(("pyfastnn flow_from_directory batch, tutorial augmentation", best_ms(lambda: it[0], repeats)))
        try:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            from tf_keras.preprocessing.image import ImageDataGenerator as KerasGenerator
            with contextlib.redirect_stdout(io.StringIO()):
                kit = KerasGenerator(**aug).flow_from_directory(root, target_size=(150, 150), batch_size=32,
                                                                class_mode="binary", seed=1)
            rows.append(("tf.keras 2 flow_from_directory batch, tutorial augmentation",
                         best_ms(lambda: kit[0], max(1, repeats // 2))))
        except ImportError:
            pass
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    import pyfastnn
    if args.threads:
        pyfastnn.set_num_threads(args.threads)
    print(f"threads {pyfastnn.get_num_threads()}, cpu_isa {pyfastnn.backend_info()['cpu_isa']}")
    for name, ms in bench_warp(args.repeats) + bench_batches(args.repeats):
        print(f"{ms:9.2f} ms  {name}")


if __name__ == "__main__":
    sys.exit(main())
