"""``pyfastnn.linalg``: torch.linalg's norms (differentiable, built from tensor ops) and the dense solvers on
numpy's LAPACK (inv, det, solve, cholesky differentiable; the factorizations forward-only, their backward
refusing clearly)."""
from __future__ import annotations

import numpy as np

from . import _device
from ._errors import ShapeError
from .tensor import _as_tensor_arg, _result, _wrap

__all__ = ["norm", "vector_norm", "matrix_norm", "inv", "det", "slogdet", "solve", "cholesky", "qr", "svd",
           "svdvals", "eigh", "eigvalsh", "pinv", "matrix_rank", "cross"]


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    x = _as_tensor_arg(x, "linalg.vector_norm")
    if dtype is not None:
        x = x.type(dtype)
    if dim is None:
        x, dim = x.reshape(-1), 0
    return x.norm(ord, dim, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    A = _as_tensor_arg(A, "linalg.matrix_norm")
    if dtype is not None:
        A = A.type(dtype)
    if ord == "fro":
        return (A * A).sum(dim, keepdim).sqrt()
    if ord == "nuc":
        return svdvals(A).sum(-1)
    if ord in (1, -1, float("inf"), float("-inf")):
        d0, d1 = dim
        s = A.abs().sum(d0 if ord in (1, -1) else d1, keepdim=True)
        red = d1 if ord in (1, -1) else d0
        out = s.amax(red, keepdim=True) if ord > 0 else s.amin(red, keepdim=True)
        return out if keepdim else out.squeeze(dim)
    if ord in (2, -2):
        sv = svdvals(A)
        return sv.amax(-1) if ord == 2 else sv.amin(-1)
    raise ValueError(f"linalg.matrix_norm: unsupported ord {ord!r}")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    A = _as_tensor_arg(A, "linalg.norm")
    if isinstance(dim, (tuple, list)) and len(dim) == 2 or (dim is None and ord is not None and A.ndim == 2):
        return matrix_norm(A, "fro" if ord is None else ord, tuple(dim) if dim is not None else (-2, -1), keepdim,
                           dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def _square(A, where):
    A = _as_tensor_arg(A, where)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{where}: A must be batches of square matrices, but they are {tuple(A.shape[-2:])} "
                         f"matrices")
    return A


def _host(a):
    return _device.host(a)


def inv(A):
    A = _square(A, "linalg.inv")
    try:
        Ai = np.linalg.inv(_host(A._array))
    except np.linalg.LinAlgError as exc:
        raise RuntimeError(f"linalg.inv: The diagonal element is zero, the inversion could not be completed "
                           f"because the input matrix is singular ({exc})") from None
    AiT = np.swapaxes(Ai, -1, -2)
    return _result(Ai, (A,), lambda g: (-(AiT @ g @ AiT),), "LinalgInvExBackward0")


def det(A):
    A = _square(A, "linalg.det")
    a = _host(A._array)
    d = np.linalg.det(a)

    def back(g):
        return ((np.asarray(g) * d)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2),)
    return _result(np.asarray(d, a.dtype), (A,), back, "LinalgDetBackward0")


def slogdet(A):
    A = _square(A, "linalg.slogdet")
    sign, logabs = np.linalg.slogdet(_host(A._array))
    a = _host(A._array)
    logabs_t = _result(np.asarray(logabs, a.dtype), (A,),
                       lambda g: (np.asarray(g)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2),),
                       "LinalgSlogdetBackward0")
    return _wrap(np.asarray(sign, a.dtype)), logabs_t


def solve(A, B, *, left=True):
    A = _square(A, "linalg.solve")
    B = _as_tensor_arg(B, "linalg.solve", "B")
    if not left:
        return solve(A.mT, B.mT).mT
    a, b = _host(A._array), _host(B._array)
    vec = b.ndim == a.ndim - 1
    X = np.linalg.solve(a, b[..., None] if vec else b)

    def back(g):
        g2 = g[..., None] if vec else g
        gb = np.linalg.solve(np.swapaxes(a, -1, -2), g2)
        ga = -gb @ np.swapaxes(X, -1, -2)
        return ga, (gb[..., 0] if vec else gb)
    return _result(X[..., 0] if vec else X, (A, B), back, "LinalgSolveExBackward0")


def cholesky(A, *, upper=False):
    A = _square(A, "linalg.cholesky")
    try:
        L = np.linalg.cholesky(_host(A._array))
    except np.linalg.LinAlgError:
        raise RuntimeError("linalg.cholesky: The factorization could not be completed because the input is not "
                           "positive-definite") from None

    def back(g):
        # Murray's formula: Phi(L^T gL) with Phi taking the lower triangle and halving the diagonal
        P = np.swapaxes(L, -1, -2) @ g
        P = np.tril(P) - 0.5 * np.eye(P.shape[-1]) * P
        Linv = np.linalg.inv(L)
        S = np.swapaxes(Linv, -1, -2) @ P @ Linv
        return (0.5 * (S + np.swapaxes(S, -1, -2)),)
    out = _result(L, (A,), back, "LinalgCholeskyExBackward0")
    return out.mT if upper else out


def _forward_only(name):
    def back(g):
        raise NotImplementedError(f"linalg.{name}: gradients through this factorization are not supported")
    return back


def qr(A, mode="reduced"):
    A = _as_tensor_arg(A, "linalg.qr")
    q, r = np.linalg.qr(_host(A._array), mode="complete" if mode == "complete" else "reduced")
    return _result(q, (A,), _forward_only("qr"), "LinalgQrBackward0"), _result(r, (A,), _forward_only("qr"),
                                                                               "LinalgQrBackward0")


def svd(A, full_matrices=True):
    A = _as_tensor_arg(A, "linalg.svd")
    u, s, vh = np.linalg.svd(_host(A._array), full_matrices=full_matrices)
    return tuple(_result(t, (A,), _forward_only("svd"), "LinalgSvdBackward0") for t in (u, s, vh))


def svdvals(A):
    A = _as_tensor_arg(A, "linalg.svdvals")
    return _result(np.linalg.svd(_host(A._array), compute_uv=False), (A,), _forward_only("svdvals"),
                   "LinalgSvdBackward0")


def eigh(A, UPLO="L"):
    A = _square(A, "linalg.eigh")
    w, v = np.linalg.eigh(_host(A._array), UPLO=UPLO)
    return _result(w, (A,), _forward_only("eigh"), "LinalgEighBackward0"), _result(v, (A,), _forward_only("eigh"),
                                                                                  "LinalgEighBackward0")


def eigvalsh(A, UPLO="L"):
    return eigh(A, UPLO)[0]


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    A = _as_tensor_arg(A, "linalg.pinv")
    return _result(np.linalg.pinv(_host(A._array), rcond=1e-15 if rtol is None else rtol, hermitian=hermitian),
                   (A,), _forward_only("pinv"), "LinalgPinvBackward0")


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False):
    A = _as_tensor_arg(A, "linalg.matrix_rank")
    return _wrap(np.asarray(np.linalg.matrix_rank(_host(A._array), hermitian=hermitian), np.int64))


def cross(input, other, *, dim=-1):
    return _as_tensor_arg(input, "linalg.cross").cross(other, dim)


