"""scikit-learn's bundled handwritten digits (offline), upscaled to 28x28 like MNIST."""
import numpy as np


def _linear_resize_matrix(src, dst):
    """(dst, src) matrix doing 1-D linear interpolation with aligned corners."""
    pos = np.linspace(0, src - 1, dst)
    lo = np.floor(pos).astype(int).clip(0, src - 2)
    frac = pos - lo
    m = np.zeros((dst, src))
    m[np.arange(dst), lo] = 1 - frac
    m[np.arange(dst), lo + 1] = frac
    return m


def load_digits_28(test_size=0.25, seed=0):
    """(x_train, x_test, y_train, y_test): float32 images (N, 1, 28, 28) in [0, 1], int64 labels;
    a stratified held-out split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images / 16.0                       # (N, 8, 8)
    m = _linear_resize_matrix(8, 28)
    big = np.einsum("ij,njk,lk->nil", m, images, m)     # separable bilinear upscale to (N, 28, 28)
    x = big[:, None].astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
