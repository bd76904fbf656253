"""Classification metrics: accuracy, precision, recall, F1 and ROC AUC.

numpy only (no scikit-learn, no torch), vectorized, and matching
scikit-learn's ``accuracy_score``, ``precision_score``, ``recall_score``,
``f1_score`` (with ``zero_division=0``) and ``roc_auc_score``.

Inputs may be numpy arrays, lists, anything with ``__array__``, objects with a
``.numpy()`` method (torch tensors, pyfastnn tensors) or CuPy arrays (copied to
the host with ``.get()``).

How ``y_pred`` becomes labels (accuracy, precision, recall, f1_score):

* float ``y_pred`` with one more dimension than ``y_true`` (shape ``(N, C)``)
  holds per-class scores or probabilities: the label is the argmax over the
  last axis, so column ``j`` stands for class ``j`` (``y_true`` must then hold
  integers in ``[0, C)``). ``(N, 1)`` is squeezed to ``(N,)`` first.
* float ``y_pred`` with the same shape as an integer/bool ``y_true`` holds
  probabilities of the positive class: the label is ``y_pred > 0.5`` (the
  rule of ``predict``: a probability of exactly 0.5 is class 0). ``y_true``
  must then be 0/1. Floats that are all whole numbers (``0.0, 2.0, ...``) are
  taken as labels instead; other floats outside ``[0, 1]`` (logits, say) are an
  error, not silently thresholded.
* anything else is compared with ``y_true`` as labels, of any dtype
  (integers, bools, strings).
"""
from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "precision", "recall", "f1_score", "roc_auc"]

_AVERAGES = ("binary", "macro", "micro", "weighted", None)
_AVERAGES_TEXT = "'binary', 'macro', 'micro', 'weighted' or None"


# --------------------------------------------------------------------------- input handling

def _as_numpy(fn: str, name: str, x) -> np.ndarray:
    """numpy view/copy of ``x``: ndarray, CuPy (``.get()``), ``.numpy()`` objects, lists, ``__array__``."""
    if x is None:
        raise TypeError(f"{fn}: argument '{name}' must be an array of labels or scores, got None")
    if not isinstance(x, np.ndarray):
        if type(x).__module__.startswith("cupy") and callable(getattr(x, "get", None)):
            x = x.get()
        elif callable(getattr(x, "numpy", None)):
            if callable(getattr(x, "detach", None)):  # torch: drop autograd, move to host
                x = x.detach()
                if callable(getattr(x, "cpu", None)):
                    x = x.cpu()
            x = x.numpy()
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{fn}: argument '{name}' could not be converted to an array: {e}") from None
    if arr.dtype.kind == "O":  # e.g. strings from pandas: let numpy infer a real dtype
        try:
            arr = np.asarray(arr.tolist())
        except (ValueError, TypeError):
            pass
    if arr.dtype.kind not in "biufUS":
        raise TypeError(f"{fn}: argument '{name}' must hold numbers or strings, got dtype {arr.dtype}")
    return arr


def _check_1d_target(fn: str, name: str, t: np.ndarray) -> np.ndarray:
    if t.ndim == 2 and t.shape[1] == 1:
        t = t.reshape(-1)
    if t.ndim != 1:
        got = "a scalar" if t.ndim == 0 else f"shape {t.shape}"
        raise ValueError(f"{fn}: argument '{name}' must be a 1-D array of class labels "
                         f"(multilabel / multi-output targets are not supported), got {got}")
    return t


def _check_lengths(fn: str, t: np.ndarray, p: np.ndarray, pname: str) -> None:
    if p.ndim == 0:
        raise ValueError(f"{fn}: argument '{pname}' must be an array, got a scalar")
    if p.shape[0] != t.shape[0]:
        raise ValueError(f"{fn}: 'y_true' has {t.shape[0]} samples but '{pname}' has {p.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError(f"{fn}: 'y_true' and '{pname}' are empty")


def _check_finite(fn: str, name: str, p: np.ndarray) -> None:
    if not np.isfinite(p).all():
        raise ValueError(f"{fn}: argument '{name}' contains NaN or infinity")


def _is_str(a: np.ndarray) -> bool:
    return a.dtype.kind in "US"


def _labels_pair(fn: str, y_true, y_pred):
    """(y_true, y_pred) as 1-D label arrays of equal length; see the module docstring for the rules."""
    t = _check_1d_target(fn, "y_true", _as_numpy(fn, "y_true", y_true))
    p = _as_numpy(fn, "y_pred", y_pred)
    _check_lengths(fn, t, p, "y_pred")
    if p.ndim == 2 and p.shape[1] == 1:
        p = p.reshape(-1)
    if p.ndim == 2:
        if p.dtype.kind != "f":
            raise ValueError(f"{fn}: 2-D argument 'y_pred' must hold float scores of shape (N, C), "
                             f"got dtype {p.dtype}; pass labels of shape (N,) instead")
        _check_finite(fn, "y_pred", p)
        n_classes = p.shape[1]
        if _is_str(t):
            raise TypeError(f"{fn}: 'y_pred' holds (N, {n_classes}) scores whose columns stand for classes "
                            f"0..{n_classes - 1}, but 'y_true' holds string labels; pass labels instead")
        bad = (t < 0) | (t >= n_classes)
        if t.dtype.kind == "f":
            bad |= t != np.floor(t)
        if bad.any():
            raise ValueError(f"{fn}: 'y_true' holds label {t[bad][0].item()!r} but 'y_pred' has scores for classes "
                             f"0..{n_classes - 1} only (column j stands for class j)")
        p = np.argmax(p, axis=1)
    elif p.ndim != 1:
        raise ValueError(f"{fn}: argument 'y_pred' must be labels (N,) or scores (N, C), got shape {p.shape}")
    elif p.dtype.kind == "f" and t.dtype.kind in "biu":
        _check_finite(fn, "y_pred", p)
        if (p == np.floor(p)).all():  # whole numbers: labels stored as floats
            p = p.astype(np.int64)
        elif ((p >= 0) & (p <= 1)).all():
            if not (t.dtype.kind == "b" or ((t == 0) | (t == 1)).all()):
                raise ValueError(f"{fn}: 1-D float 'y_pred' is read as probabilities of class 1, which needs "
                                 f"0/1 'y_true', but 'y_true' holds other labels; pass labels or (N, C) scores")
            p = p > 0.5
            if t.dtype.kind != "b":
                p = p.astype(np.int64)
        else:
            raise ValueError(f"{fn}: 1-D float 'y_pred' must be probabilities in [0, 1] or whole-number "
                             f"labels, got other values (apply a sigmoid to logits first)")
    if _is_str(t) != _is_str(p):
        raise TypeError(f"{fn}: 'y_true' and 'y_pred' mix string and number labels "
                        f"({t.dtype} and {p.dtype})")
    return t, p


# --------------------------------------------------------------------------- metrics

def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true one.

    ``y_pred`` may be labels, ``(N, C)`` scores (argmax) or binary
    probabilities (threshold 0.5); see the module docstring.
    """
    t, p = _labels_pair("accuracy", y_true, y_pred)
    return float(np.count_nonzero(t == p) / t.shape[0])


def _counts(fn: str, y_true, y_pred):
    """Sorted label set (union of y_true and y_pred) and per-label tp, true counts and predicted counts."""
    t, p = _labels_pair(fn, y_true, y_pred)
    labels, inv = np.unique(np.concatenate([t, p]), return_inverse=True)
    inv = inv.reshape(-1)
    n, n_labels = t.shape[0], labels.shape[0]
    ti, pi = inv[:n], inv[n:]
    true_sum = np.bincount(ti, minlength=n_labels)
    pred_sum = np.bincount(pi, minlength=n_labels)
    tp = np.bincount(ti[ti == pi], minlength=n_labels)
    return labels, tp, true_sum, pred_sum


def _divide(num, den) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _prf(fn: str, which: str, y_true, y_pred, average, pos_label):
    if not (average is None or (isinstance(average, str) and average in _AVERAGES)):
        raise ValueError(f"{fn}: argument 'average' must be one of {_AVERAGES_TEXT}, got {average!r}")
    labels, tp, true_sum, pred_sum = _counts(fn, y_true, y_pred)

    if average == "binary":
        if labels.shape[0] > 2:
            shown = ", ".join(repr(v) for v in labels[:10].tolist()) + (", ..." if labels.shape[0] > 10 else "")
            raise ValueError(f"{fn}: average='binary' needs binary targets, but 'y_true' and 'y_pred' hold "
                             f"{labels.shape[0]} labels [{shown}]; use average='macro' (or 'micro', "
                             f"'weighted', None)")
        hit = labels == pos_label
        if not np.any(hit):
            if labels.shape[0] == 2:
                raise ValueError(f"{fn}: argument 'pos_label'={pos_label!r} is not a label; the labels are "
                                 f"{labels.tolist()}")
            tp = true_sum = pred_sum = np.zeros(1, dtype=np.int64)  # positive class never occurs: all 0
        else:
            k = int(np.flatnonzero(hit)[0])
            tp, true_sum, pred_sum = tp[k:k + 1], true_sum[k:k + 1], pred_sum[k:k + 1]
    elif average == "micro":
        tp, true_sum, pred_sum = tp.sum(keepdims=True), true_sum.sum(keepdims=True), pred_sum.sum(keepdims=True)

    if which == "precision":
        per_label = _divide(tp, pred_sum)
    elif which == "recall":
        per_label = _divide(tp, true_sum)
    else:
        per_label = _divide(2 * tp, true_sum + pred_sum)

    if average is None:
        return per_label
    if average == "macro":
        return float(per_label.mean())
    if average == "weighted":
        return float(_divide(np.dot(per_label, true_sum), true_sum.sum()))
    return float(per_label[0])  # binary, micro


def precision(y_true, y_pred, average="binary", pos_label=1):
    """Precision tp / (tp + fp); 0 where nothing was predicted for a label.

    ``average``: 'binary' (the ``pos_label`` class; targets must have at most
    two labels), 'micro' (global counts; equals accuracy), 'macro' (unweighted
    mean over labels), 'weighted' (mean weighted by true counts) or None (an
    array, one value per label). Labels are the sorted union of those in
    ``y_true`` and ``y_pred``. ``y_pred`` may be labels or scores, as in
    :func:`accuracy`.
    """
    return _prf("precision", "precision", y_true, y_pred, average, pos_label)


def recall(y_true, y_pred, average="binary", pos_label=1):
    """Recall tp / (tp + fn); 0 where a label never occurs in ``y_true``.

    ``average`` and ``pos_label`` as in :func:`precision`.
    """
    return _prf("recall", "recall", y_true, y_pred, average, pos_label)


def f1_score(y_true, y_pred, average="binary", pos_label=1):
    """F1 = 2 tp / (2 tp + fp + fn), the harmonic mean of precision and recall; 0 where undefined.

    ``average`` and ``pos_label`` as in :func:`precision`.
    """
    return _prf("f1_score", "f1", y_true, y_pred, average, pos_label)


def _binary_auc(pos: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos n_neg) with average ranks for ties (== area under the ROC curve)."""
    _, inv, counts = np.unique(score, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    # Twice the average rank of each distinct score: 2*(#smaller) + count + 1 -- an integer.
    smaller = np.cumsum(counts) - counts
    twice_rank = 2 * smaller + counts + 1
    n_pos = int(np.count_nonzero(pos))
    n_neg = pos.shape[0] - n_pos
    twice_u = int(twice_rank[inv[pos]].sum()) - n_pos * (n_pos + 1)
    return twice_u / (2.0 * n_pos * n_neg)


def roc_auc(y_true, y_score, multi_class="ovr", average="macro") -> float:
    """Area under the ROC curve, ties scored as half (equals scikit-learn's ``roc_auc_score``).

    Binary: ``y_score`` is the score of the greater label (1, True, ...), of
    shape (N,), (N, 1), or (N, 2) (column 1 is used). Multiclass: ``y_score``
    is (N, C) with column j standing for the j-th sorted label of ``y_true``;
    the result is the one-vs-rest AUC per class, averaged 'macro' (plain mean)
    or 'weighted' (by class prevalence). Unlike scikit-learn, rows need not sum
    to 1 (the AUC only uses ranks). Raises ValueError when ``y_true`` holds a
    single class.
    """
    fn = "roc_auc"
    if multi_class != "ovr":
        raise ValueError(f"{fn}: argument 'multi_class' must be 'ovr' (one-vs-rest), got {multi_class!r}")
    if average not in ("macro", "weighted"):
        raise ValueError(f"{fn}: argument 'average' must be 'macro' or 'weighted', got {average!r}")
    t = _check_1d_target(fn, "y_true", _as_numpy(fn, "y_true", y_true))
    s = _as_numpy(fn, "y_score", y_score)
    _check_lengths(fn, t, s, "y_score")
    if s.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: argument 'y_score' must hold numbers, got dtype {s.dtype}")
    if s.ndim > 2 or (s.ndim == 2 and s.shape[1] == 0):
        raise ValueError(f"{fn}: argument 'y_score' must have shape (N,), (N, 1) or (N, C), got {s.shape}")
    _check_finite(fn, "y_score", s)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s.reshape(-1)

    classes, ti = np.unique(t, return_inverse=True)
    ti = ti.reshape(-1)
    n_classes = classes.shape[0]
    if n_classes < 2:
        raise ValueError(f"{fn}: only one class ({classes[0].item()!r}) is present in 'y_true'; "
                         f"ROC AUC is undefined")
    if s.ndim == 1 or s.shape[1] == 2:
        if n_classes != 2:
            raise ValueError(f"{fn}: 'y_true' holds {n_classes} classes but 'y_score' has shape {s.shape}; "
                             f"multiclass ROC AUC needs scores of shape (N, {n_classes})")
        return _binary_auc(ti == 1, s if s.ndim == 1 else s[:, 1])
    if s.shape[1] != n_classes:
        raise ValueError(f"{fn}: 'y_true' holds {n_classes} classes but 'y_score' has {s.shape[1]} columns; "
                         f"they must match (column j stands for the j-th sorted label)")
    # One-vs-rest: class k's column against "is class k" (a loop over classes, not samples).
    aucs = np.array([_binary_auc(ti == k, s[:, k]) for k in range(n_classes)])
    n_pos = np.bincount(ti, minlength=n_classes)
    if average == "macro":
        return float(aucs.mean())
    return float(np.dot(aucs, n_pos) / t.shape[0])
