"""pyfastnn.metrics against scikit-learn, on fresh random data of awkward sizes."""
import ast
import pathlib
import warnings

import numpy as np
import pytest

from pyfastnn import metrics as M

skm = pytest.importorskip("sklearn.metrics")

SIZES = [1, 2, 7, 101]
CLASSES = [2, 3, 10]
AVERAGES = ["binary", "macro", "micro", "weighted", None]
PRF = {"precision": (M.precision, "precision_score"),
       "recall": (M.recall, "recall_score"),
       "f1_score": (M.f1_score, "f1_score")}


@pytest.fixture
def rng():
    """A fresh generator each test; its seed is printed so a failure can be replayed."""
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print(f"seed={seed}")
    return np.random.default_rng(seed)


def _labels(rng, n, n_classes):
    """y_true over all classes, y_pred over a subset (some classes never predicted)."""
    y_true = rng.integers(0, n_classes, size=n)
    pred_classes = rng.choice(n_classes, size=max(1, n_classes - 1), replace=False)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(pred_classes, size=n))
    return y_true, y_pred


def _scores_for(rng, y_pred, n_classes):
    """(N, C) float scores whose argmax is y_pred."""
    s = rng.random((y_pred.shape[0], n_classes))
    s[np.arange(y_pred.shape[0]), y_pred] += 1.0
    return s


def _sk(name, y_true, y_pred, **kw):
    """scikit-learn's value, or the ValueError it raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "pos_label is ignored when average != 'binary'", ...
            return getattr(skm, name)(y_true, y_pred, **kw)
    except ValueError as e:
        return e


def _check(ours_fn, ref, *args, **kw):
    if isinstance(ref, ValueError):
        with pytest.raises(ValueError):
            ours_fn(*args, **kw)
        return
    got = ours_fn(*args, **kw)
    if np.ndim(ref) == 0:
        assert isinstance(got, float)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- accuracy

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("n_classes", CLASSES)
def test_accuracy_matches_sklearn(rng, n, n_classes):
    y_true, y_pred = _labels(rng, n, n_classes)
    ref = skm.accuracy_score(y_true, y_pred)
    assert M.accuracy(y_true, y_pred) == pytest.approx(ref, rel=1e-15)
    assert M.accuracy(y_true.tolist(), y_pred.tolist()) == pytest.approx(ref, rel=1e-15)
    scores = _scores_for(rng, y_pred, n_classes)
    assert M.accuracy(y_true, scores) == pytest.approx(ref, rel=1e-15)
    assert M.accuracy(y_true, scores.astype(np.float32).tolist()) == pytest.approx(ref, rel=1e-15)


@pytest.mark.parametrize("n", SIZES)
def test_accuracy_binary_probabilities(rng, n):
    y_true = rng.integers(0, 2, size=n)
    prob = rng.random(n)
    ref = skm.accuracy_score(y_true, (prob > 0.5).astype(int))
    assert M.accuracy(y_true, prob) == pytest.approx(ref)
    assert M.accuracy(y_true, prob[:, None]) == pytest.approx(ref)  # (N, 1) squeezed
    assert M.accuracy(y_true.astype(bool), prob) == pytest.approx(ref)
    assert M.accuracy(y_true[:, None], prob) == pytest.approx(ref)  # (N, 1) targets too


def test_accuracy_threshold_and_float_labels():
    assert M.accuracy([0, 1], [0.5, 0.5]) == 0.5  # exactly 0.5 is class 0, as predict() does
    assert M.accuracy([0, 1], np.array([0.4999, 0.5001])) == 1.0
    assert M.accuracy([0, 2, 1], [0.0, 2.0, 1.0]) == 1.0  # whole-number floats are labels, not thresholded
    assert M.accuracy(["a", "b", "c"], ["a", "b", "b"]) == pytest.approx(2 / 3)
    assert M.accuracy([0.0, 1.0], [0.0, 1.0]) == 1.0  # float targets: direct comparison


# --------------------------------------------------------------------------- precision / recall / f1

@pytest.mark.parametrize("metric", list(PRF))
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("n_classes", CLASSES)
@pytest.mark.parametrize("n", SIZES)
def test_prf_matches_sklearn(rng, metric, average, n_classes, n):
    ours, sk_name = PRF[metric]
    y_true, y_pred = _labels(rng, n, n_classes)
    ref = _sk(sk_name, y_true, y_pred, average=average, zero_division=0)
    _check(ours, ref, y_true, y_pred, average=average)
    _check(ours, ref, y_true.tolist(), y_pred.tolist(), average=average)
    _check(ours, ref, y_true, _scores_for(rng, y_pred, n_classes), average=average)  # scores -> argmax
    if average == "binary" and np.union1d(y_true, y_pred).shape[0] > 2:
        assert isinstance(ref, ValueError)  # multiclass targets: both raise


@pytest.mark.parametrize("metric", list(PRF))
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("n", SIZES)
def test_prf_binary_probabilities_and_pos_label(rng, metric, average, n):
    ours, sk_name = PRF[metric]
    y_true = rng.integers(0, 2, size=n)
    prob = rng.random(n)
    hard = (prob > 0.5).astype(int)
    for pos_label in (1, 0):
        ref = _sk(sk_name, y_true, hard, average=average, pos_label=pos_label, zero_division=0)
        _check(ours, ref, y_true, prob, average=average, pos_label=pos_label)
        _check(ours, ref, y_true.tolist(), prob[:, None].tolist(), average=average, pos_label=pos_label)
    # string and {-1, 1} labels
    names = np.array(["cat", "dog"])
    ref = _sk(sk_name, names[y_true], names[hard], average=average, pos_label="dog", zero_division=0)
    _check(ours, ref, names[y_true], names[hard].tolist(), average=average, pos_label="dog")
    ref = _sk(sk_name, 2 * y_true - 1, 2 * hard - 1, average=average, zero_division=0)
    _check(ours, ref, 2 * y_true - 1, 2 * hard - 1, average=average)


def test_prf_edge_cases():
    # Positive class never occurs anywhere: 0, like sklearn's zero_division=0.
    for fn in (M.precision, M.recall, M.f1_score):
        assert fn([0, 0, 0], [0, 0, 0]) == 0.0
        assert fn([5, 5], [5, 5]) == 0.0
    # Nothing predicted positive: precision 0, recall 0.
    assert M.precision([1, 0, 1], [0, 0, 0]) == 0.0
    assert M.recall([1, 0, 1], [0, 0, 0]) == 0.0
    # micro averaging over all labels is accuracy.
    y_true, y_pred = [0, 1, 2, 2, 1], [0, 2, 2, 2, 0]
    for fn in (M.precision, M.recall, M.f1_score):
        assert fn(y_true, y_pred, average="micro") == pytest.approx(M.accuracy(y_true, y_pred))
    per_label = M.f1_score([0, 1, 2, 2], [0, 0, 0, 0], average=None)
    assert isinstance(per_label, np.ndarray)
    np.testing.assert_allclose(per_label, [0.4, 0.0, 0.0])
    # Label 3 only predicted, never true: it is in the macro label set (union).
    assert M.recall([0, 1], [0, 3], average="macro") == pytest.approx(
        skm.recall_score([0, 1], [0, 3], average="macro", zero_division=0))


# --------------------------------------------------------------------------- roc_auc

def _binary_targets(rng, n):
    y = rng.integers(0, 2, size=n)
    y[:2] = [0, 1]  # both classes present
    return rng.permutation(y)


@pytest.mark.parametrize("n", [2, 7, 101])
def test_roc_auc_binary_matches_sklearn(rng, n):
    y = _binary_targets(rng, n)
    for score in (rng.random(n), np.round(rng.random(n), 1), rng.integers(0, 3, size=n).astype(float)):
        ref = skm.roc_auc_score(y, score)
        assert M.roc_auc(y, score) == pytest.approx(ref, rel=1e-12)
        assert M.roc_auc(y.tolist(), score.tolist()) == pytest.approx(ref, rel=1e-12)
        assert M.roc_auc(y, score[:, None]) == pytest.approx(ref, rel=1e-12)
        assert M.roc_auc(y.astype(bool), score) == pytest.approx(ref, rel=1e-12)
        assert M.roc_auc(2 * y - 1, score) == pytest.approx(ref, rel=1e-12)
        assert M.roc_auc(np.array(["neg", "pos"])[y], score) == pytest.approx(ref, rel=1e-12)
        two_col = np.stack([1 - score, score], axis=1)
        assert M.roc_auc(y, two_col) == pytest.approx(ref, rel=1e-12)  # column 1 used
    assert M.roc_auc(y, np.zeros(n)) == 0.5  # all tied
    assert M.roc_auc(y, y) == 1.0
    assert M.roc_auc(y, -y) == 0.0


def _probability_rows(rng, n, n_classes, distinct):
    """Rows drawn from a few distinct probability vectors: many ties in every column."""
    pool = rng.dirichlet(np.ones(n_classes), size=distinct)
    return pool[rng.integers(0, distinct, size=n)]


@pytest.mark.parametrize("n_classes", [3, 10])
@pytest.mark.parametrize("n", [10, 101])
@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_roc_auc_multiclass_ovr_matches_sklearn(rng, n_classes, n, average):
    y = rng.permutation(np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, size=n - n_classes)]))
    for distinct in (3, n):
        score = _probability_rows(rng, n, n_classes, distinct)
        ref = skm.roc_auc_score(y, score, multi_class="ovr", average=average)
        assert M.roc_auc(y, score, average=average) == pytest.approx(ref, rel=1e-12)
        assert M.roc_auc(y.tolist(), score.tolist(), multi_class="ovr", average=average) == pytest.approx(ref, rel=1e-12)
    # Columns stand for the sorted labels of y_true, whatever they are.
    labels = np.array([f"c{i:02d}" for i in range(n_classes)])
    ref = skm.roc_auc_score(labels[y], score, multi_class="ovr", average=average)
    assert M.roc_auc(labels[y], score, average=average) == pytest.approx(ref, rel=1e-12)


def test_roc_auc_exact_on_large_input(rng):
    n = 20_000
    y = _binary_targets(rng, n)
    score = rng.integers(0, 50, size=n)  # heavy ties
    assert M.roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score), rel=1e-13)


# --------------------------------------------------------------------------- input types

class _ArrayLike:
    def __init__(self, a):
        self._a = np.asarray(a)

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


class _TensorLike:
    """Like a torch / pyfastnn tensor: not an ndarray, has .numpy()."""

    def __init__(self, a):
        self._a = np.asarray(a)

    def numpy(self):
        return self._a


class _FakeCupy:
    """Looks like a CuPy array: lives in a 'cupy' module and copies to the host with .get()."""

    __module__ = "cupy._core.core"

    def __init__(self, a):
        self._a = np.asarray(a)

    def get(self):
        return self._a


@pytest.mark.parametrize("wrap", [list, tuple, _ArrayLike, _TensorLike, _FakeCupy])
def test_array_like_inputs(rng, wrap):
    y_true, y_pred = _labels(rng, 50, 3)
    scores = _scores_for(rng, y_pred, 3)

    def w(a):
        return wrap(a.tolist()) if wrap in (list, tuple) else wrap(a)

    assert M.accuracy(w(y_true), w(scores)) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert M.f1_score(w(y_true), w(y_pred), average="macro") == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    yb = _binary_targets(rng, 50)
    s = rng.random(50)
    assert M.roc_auc(w(yb), w(s)) == pytest.approx(skm.roc_auc_score(yb, s))


def test_numpy_only():
    tree = ast.parse(pathlib.Path(M.__file__).read_text())
    imported = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"numpy", "__future__"}
    assert set(M.__all__) == {"accuracy", "precision", "recall", "f1_score", "roc_auc"}


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("fn, name", [(M.accuracy, "accuracy"), (M.precision, "precision"),
                                      (M.recall, "recall"), (M.f1_score, "f1_score")])
def test_label_metric_errors(fn, name):
    y10, y9 = np.zeros(10, dtype=int), np.zeros(9, dtype=int)
    with pytest.raises(ValueError, match=rf"^{name}: 'y_true' has 10 samples but 'y_pred' has 9$"):
        fn(y10, y9)
    with pytest.raises(ValueError, match=rf"^{name}: 'y_true' has 10 samples but 'y_pred' has 9$"):
        fn(y10.tolist(), np.zeros((9, 3)))
    with pytest.raises(ValueError, match=rf"^{name}: .*'y_true'.*empty"):
        fn([], [])
    with pytest.raises(ValueError, match=rf"^{name}: argument 'y_true' must be a 1-D"):
        fn(np.zeros((4, 3), dtype=int), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=rf"^{name}: argument 'y_true' must be a 1-D.*scalar"):
        fn(1, [1])
    with pytest.raises(ValueError, match=rf"^{name}: .*'y_pred'"):
        fn([0, 1], np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=rf"^{name}: 'y_true' holds label 3 but 'y_pred' has scores"):
        fn([0, 3], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=rf"^{name}: argument 'y_pred' contains NaN"):
        fn([0, 1], np.array([[0.1, np.nan], [0.3, 0.7]]))
    with pytest.raises(ValueError, match=rf"^{name}: 1-D float 'y_pred' must be probabilities.*logits"):
        fn([0, 1], [-1.3, 2.5])
    with pytest.raises(ValueError, match=rf"^{name}: 1-D float 'y_pred' is read as probabilities"):
        fn([0, 1, 2], [0.2, 0.7, 0.9])
    with pytest.raises(TypeError, match=rf"^{name}: 'y_true' and 'y_pred' mix string and number"):
        fn(["a", "b"], [0, 1])
    with pytest.raises(TypeError, match=rf"^{name}: .*string labels"):
        fn(["a", "b"], np.zeros((2, 2)))
    with pytest.raises(TypeError, match=rf"^{name}: argument 'y_pred' must be"):
        fn([0, 1], None)


@pytest.mark.parametrize("fn, name", [(M.precision, "precision"), (M.recall, "recall"), (M.f1_score, "f1_score")])
def test_average_errors(fn, name):
    with pytest.raises(ValueError, match=rf"^{name}: argument 'average' must be one of .*got 'samples'"):
        fn([0, 1], [0, 1], average="samples")
    with pytest.raises(ValueError, match=rf"^{name}: argument 'average' must be one of"):
        fn([0, 1], [0, 1], average=1)
    with pytest.raises(ValueError, match=rf"^{name}: average='binary' needs binary.*average='macro'"):
        fn([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match=rf"^{name}: argument 'pos_label'=1 is not a label"):
        fn([2, 3], [2, 3])
    with pytest.raises(ValueError, match=rf"^{name}: argument 'pos_label'='x' is not a label"):
        fn(["a", "b"], ["a", "b"], pos_label="x")


def test_roc_auc_errors():
    with pytest.raises(ValueError, match=r"^roc_auc: only one class \(1\) is present in 'y_true'"):
        M.roc_auc([1, 1, 1], [0.2, 0.4, 0.9])
    with pytest.raises(ValueError, match=r"^roc_auc: only one class"):
        M.roc_auc([0], [0.5])
    with pytest.raises(ValueError, match=r"^roc_auc: 'y_true' has 10 samples but 'y_score' has 9$"):
        M.roc_auc(np.arange(10) % 2, np.zeros(9))
    with pytest.raises(ValueError, match=r"^roc_auc: 'y_true' and 'y_score' are empty"):
        M.roc_auc([], [])
    with pytest.raises(ValueError, match=r"^roc_auc: 'y_true' holds 3 classes but 'y_score' has shape \(3,\)"):
        M.roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"^roc_auc: 'y_true' holds 3 classes but 'y_score' has 4 columns"):
        M.roc_auc([0, 1, 2], np.full((3, 4), 0.25))
    with pytest.raises(ValueError, match=r"^roc_auc: argument 'y_score' contains NaN"):
        M.roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"^roc_auc: argument 'multi_class' must be 'ovr'"):
        M.roc_auc([0, 1], [0.1, 0.2], multi_class="ovo")
    with pytest.raises(ValueError, match=r"^roc_auc: argument 'average' must be 'macro' or 'weighted'"):
        M.roc_auc([0, 1], [0.1, 0.2], average="micro")
    with pytest.raises(TypeError, match=r"^roc_auc: argument 'y_score' must hold numbers"):
        M.roc_auc([0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"^roc_auc: argument 'y_score' must have shape"):
        M.roc_auc([0, 1], np.zeros((2, 2, 2)))
