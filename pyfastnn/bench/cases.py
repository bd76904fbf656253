"""Benchmark cases per op, each with its NumPy and PyTorch twin."""
from __future__ import annotations

import numpy as np

from .. import ops
from .runner import Case

GEMM_SHAPES = [  # (M, N, K): square sizes, then the skinny shapes of small nets
    (2048, 2048, 2048), (1024, 1024, 1024), (512, 512, 512),
    (128, 128, 784), (64, 128, 3136), (256, 4096, 64),
]


def gemm_cases(torch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cases = []
    for m, n, k in GEMM_SHAPES:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        impls = {"pyfastnn": lambda a=a, b=b: ops.matmul(a, b), "numpy": lambda a=a, b=b: a @ b}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            impls["torch"] = lambda ta=ta, tb=tb: torch.mm(ta, tb)
        cases.append(Case("matmul", f"{m}x{n}x{k}", flops=2.0 * m * n * k, impls=impls))
    # The fused epilogue against the unfused peers (GEMM, then bias + gelu).
    m, n, k = 1024, 1024, 1024
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    impls = {"pyfastnn": lambda: ops.matmul(a, b, bias, activation="gelu")}
    if torch is not None:
        ta, tb, tbias = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(bias)
        impls["torch"] = lambda: torch.nn.functional.gelu(torch.addmm(tbias, ta, tb))
    cases.append(Case("matmul+bias+gelu", f"{m}x{n}x{k}", flops=2.0 * m * n * k, impls=impls))
    return cases


CONV_SHAPES = [  # (N, C, H, W, O, k, padding)
    (64, 1, 28, 28, 32, 3, 0), (64, 32, 13, 13, 64, 3, 0), (32, 64, 56, 56, 64, 3, 1),
    (16, 128, 28, 28, 128, 3, 1), (32, 64, 28, 28, 128, 1, 0),
]


def conv_cases(torch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cases = []
    for n, c, h, w_, o, k, pad in CONV_SHAPES:
        x = rng.standard_normal((n, c, h, w_)).astype(dtype)
        w = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)
        oh, ow = h + 2 * pad - k + 1, w_ + 2 * pad - k + 1
        gy = rng.standard_normal((n, o, oh, ow)).astype(dtype)
        flops = 2.0 * n * o * c * k * k * oh * ow
        label = f"{n}x{c}x{h}x{w_}>{o},{k}x{k}" + (f",p{pad}" if pad else "")
        fwd = {"pyfastnn": lambda x=x, w=w, b=b, pad=pad: ops.conv2d(x, w, b, padding=pad)}
        both = {"pyfastnn": lambda x=x, w=w, b=b, gy=gy, pad=pad: (
            ops.conv2d(x, w, b, padding=pad), ops.conv2d_backward(gy, x, w, padding=pad))}
        if torch is not None:
            tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
            F = torch.nn.functional
            fwd["torch"] = lambda tx=tx, tw=tw, tb=tb, pad=pad: F.conv2d(tx, tw, tb, padding=pad)

            def torch_both(tx=tx, tw=tw, tb=tb, tgy=tgy, pad=pad):
                xr, wr, br = (t.detach().requires_grad_() for t in (tx, tw, tb))
                F.conv2d(xr, wr, br, padding=pad).backward(tgy)
                return xr.grad, wr.grad, br.grad
            both["torch"] = torch_both
        cases.append(Case("conv2d fwd", label, flops=flops, impls=fwd))
        cases.append(Case("conv2d fwd+bwd", label, flops=3 * flops, impls=both))
    return cases


POOL_SHAPES = [  # (shape, kernel, stride, padding)
    ((64, 32, 26, 26), 2, 2, 0), ((32, 64, 56, 56), 2, 2, 0), ((10, 64, 112, 112), 3, 2, 1),
]


def pool_cases(torch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cases = []
    for shape, k, s, p in POOL_SHAPES:
        x = rng.standard_normal(shape).astype(dtype)
        y, idx = ops.max_pool2d(x, k, s, p)
        gy = rng.standard_normal(y.shape).astype(dtype)
        label = f"{'x'.join(map(str, shape))},{k}/{s}" + (f"p{p}" if p else "")
        xb, yb, ib = x.nbytes, y.nbytes, idx.nbytes
        F = torch.nn.functional if torch is not None else None
        tx = torch.from_numpy(x) if torch is not None else None
        tgy = torch.from_numpy(gy) if torch is not None else None
        tidx = torch.from_numpy(idx) if torch is not None else None
        impls = {"pyfastnn": lambda x=x, k=k, s=s, p=p: ops.max_pool2d(x, k, s, p)}
        if torch is not None:
            impls["torch"] = lambda tx=tx, k=k, s=s, p=p: F.max_pool2d(tx, k, s, p, return_indices=True)
        cases.append(Case("max_pool2d", label, bytes=xb + yb + ib, impls=impls))
        impls = {"pyfastnn": lambda gy=gy, idx=idx, shape=shape, k=k, s=s, p=p: ops.max_pool2d_backward(gy, idx, shape)}
        if torch is not None:
            impls["torch"] = lambda tgy=tgy, tidx=tidx, tx=tx, k=k, s=s, p=p: torch.ops.aten.max_pool2d_with_indices_backward(
                tgy, tx, [k, k], [s, s], [p, p], [1, 1], False, tidx)
        cases.append(Case("max_pool2d bwd", label, bytes=yb + ib + xb, impls=impls))
        impls = {"pyfastnn": lambda x=x, k=k, s=s, p=p: ops.avg_pool2d(x, k, s, p)}
        if torch is not None:
            impls["torch"] = lambda tx=tx, k=k, s=s, p=p: F.avg_pool2d(tx, k, s, p)
        cases.append(Case("avg_pool2d", label, bytes=xb + yb, impls=impls))
        impls = {"pyfastnn": lambda gy=gy, shape=shape, k=k, s=s, p=p: ops.avg_pool2d_backward(gy, shape, k, s, p)}
        if torch is not None:
            impls["torch"] = lambda tgy=tgy, tx=tx, k=k, s=s, p=p: torch.ops.aten.avg_pool2d_backward(
                tgy, tx, [k, k], [s, s], [p, p], False, True, None)
        cases.append(Case("avg_pool2d bwd", label, bytes=yb + xb, impls=impls))
    return cases


LSTM_SHAPES = [(100, 64, 64, 64), (100, 64, 256, 256), (50, 32, 512, 512)]  # (T, B, I, H)


def lstm_cases(torch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cases = []
    for T, B, I, H in LSTM_SHAPES:
        x = rng.standard_normal((T, B, I)).astype(dtype)
        h0 = np.zeros((B, H), dtype)
        w_ih = (rng.standard_normal((4 * H, I)) / np.sqrt(H)).astype(dtype)
        w_hh = (rng.standard_normal((4 * H, H)) / np.sqrt(H)).astype(dtype)
        b = np.zeros(4 * H, dtype)
        gy = rng.standard_normal((T, B, H)).astype(dtype)
        flops = 2.0 * T * B * 4 * H * (I + H)  # the GEMMs of the forward pass
        label = f"T{T} B{B} I{I} H{H}"

        def fwd(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b=b):
            return ops.lstm(x, h0, h0, w_ih, w_hh, b, b)

        def both(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b=b, gy=gy):
            out = ops.lstm(x, h0, h0, w_ih, w_hh, b, b)
            return ops.lstm_backward(gy, None, None, out[3])

        impls_f, impls_b = {"pyfastnn": fwd}, {"pyfastnn": both}
        if torch is not None:
            m = torch.nn.LSTM(I, H)
            tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)

            def torch_fwd(m=m, tx=tx):
                with torch.no_grad():
                    return m(tx)

            def torch_both(m=m, tx=tx, tgy=tgy):
                xr = tx.detach().requires_grad_()
                y, _ = m(xr)
                y.backward(tgy)
                return xr.grad

            impls_f["torch"], impls_b["torch"] = torch_fwd, torch_both
        cases.append(Case("lstm fwd", label, flops=flops, impls=impls_f))
        cases.append(Case("lstm fwd+bwd", label, flops=3 * flops, impls=impls_b))
    return cases



OPTIM_N = 10_000_000


def optim_cases(torch=None, dtype=np.float32):
    """One optimizer step on a large flat parameter: pure memory traffic, so
    GB/s is compared with the memcpy bandwidth. torch runs its default CPU
    path (one tensor at a time) on tensors of its own, sharing only the
    read-only gradient."""
    rng = np.random.default_rng(0)
    n = OPTIM_N
    nbytes = n * np.dtype(dtype).itemsize
    label = f"{n // 1_000_000}M {np.dtype(dtype).name}"
    grad = rng.standard_normal(n, dtype=dtype)

    def param():
        return rng.standard_normal(n, dtype=dtype)

    def torch_step(make_opt):
        tp = torch.from_numpy(param()).requires_grad_()
        tp.grad = torch.from_numpy(grad)
        opt = make_opt(tp)
        return opt.step

    cases = []
    # SGD with momentum: reads param, grad, buffer; writes param, buffer.
    p, buf = param(), np.zeros(n, dtype)
    ops.sgd_step(p, grad, buf, lr=1e-3, momentum=0.9, first_step=True)
    impls = {"pyfastnn": lambda p=p, buf=buf: ops.sgd_step(p, grad, buf, lr=1e-3, momentum=0.9)}
    if torch is not None:
        impls["torch"] = torch_step(lambda tp: torch.optim.SGD([tp], lr=1e-3, momentum=0.9))
    cases.append(Case("sgd momentum", label, bytes=5 * nbytes, impls=impls))
    # Adam: reads param, grad, exp_avg, exp_avg_sq; writes param, exp_avg, exp_avg_sq.
    p, m, v = param(), np.zeros(n, dtype), np.zeros(n, dtype)
    steps = [0]

    def adam(p=p, m=m, v=v):
        steps[0] += 1
        ops.adam_step(p, grad, m, v, step=steps[0], lr=1e-3)
    impls = {"pyfastnn": adam}
    if torch is not None:
        impls["torch"] = torch_step(lambda tp: torch.optim.Adam([tp], lr=1e-3))
    cases.append(Case("adam", label, bytes=7 * nbytes, impls=impls))
    # RMSprop: reads param, grad, square_avg; writes param, square_avg.
    p, sq = param(), np.zeros(n, dtype)
    impls = {"pyfastnn": lambda p=p, sq=sq: ops.rmsprop_step(p, grad, sq, lr=1e-3)}
    if torch is not None:
        impls["torch"] = torch_step(lambda tp: torch.optim.RMSprop([tp], lr=1e-3))
    cases.append(Case("rmsprop", label, bytes=5 * nbytes, impls=impls))
    return cases


ATTENTION_SHAPES = [(8, 8, 512, 64, False), (4, 8, 1024, 64, True), (1, 8, 4096, 64, True)]  # (B, H, N, D, causal)


def attention_cases(torch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cases = []
    for B, H, N, D, causal in ATTENTION_SHAPES:
        q, k, v, g = (rng.standard_normal((B, H, N, D)).astype(dtype) for _ in range(4))
        flops = 4.0 * B * H * N * N * D * (0.5 if causal else 1.0)  # the two products of the forward pass
        label = f"B{B} H{H} N{N} D{D}" + (" causal" if causal else "")

        def fwd(q=q, k=k, v=v, causal=causal):
            return ops.attention(q, k, v, causal=causal)

        def both(q=q, k=k, v=v, g=g, causal=causal):
            out, lse = ops.attention(q, k, v, causal=causal)
            return ops.attention_backward(g, q, k, v, out, lse, causal=causal)

        impls_f, impls_b = {"pyfastnn": fwd}, {"pyfastnn": both}
        if torch is not None:
            tq, tk, tv, tg = (torch.from_numpy(a) for a in (q, k, v, g))
            sdpa = torch.nn.functional.scaled_dot_product_attention

            def torch_fwd(tq=tq, tk=tk, tv=tv, causal=causal):
                with torch.no_grad():
                    return sdpa(tq, tk, tv, is_causal=causal)

            def torch_both(tq=tq, tk=tk, tv=tv, tg=tg, causal=causal):
                qr, kr, vr = (t.detach().requires_grad_() for t in (tq, tk, tv))
                sdpa(qr, kr, vr, is_causal=causal).backward(tg)
                return qr.grad

            impls_f["torch"], impls_b["torch"] = torch_fwd, torch_both
        cases.append(Case("attention fwd", label, flops=flops, impls=impls_f))
        cases.append(Case("attention fwd+bwd", label, flops=3.5 * flops, impls=impls_b))
    return cases


def _tutorial_cnn(nn):
    """The tutorial CNN, built from pyfastnn.nn or torch.nn (same constructor names)."""
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))


def train_cases(torch=None, dtype=np.float32):
    """End to end: one training step (forward, cross entropy, backward, Adam) of
    the tutorial CNN at batch 64 on 28x28 inputs, against PyTorch eager."""
    from .. import nn, optim, tensor
    rng = np.random.default_rng(0)
    n = 64
    x = rng.standard_normal((n, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, n)
    # conv1 26x26x32 from 1 channel, conv2 11x11x64 from 32, fc 1600->128->10; training ~ 3x forward
    fwd = 2.0 * n * (32 * 9 * 26 * 26 + 64 * 32 * 9 * 11 * 11 + 1600 * 128 + 128 * 10)
    model = _tutorial_cnn(nn)
    opt = optim.Adam(model.parameters())
    xt = tensor(x)

    def step():
        loss = nn.functional.cross_entropy(model(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    impls = {"pyfastnn": step}
    if torch is not None:
        tmodel = _tutorial_cnn(torch.nn)
        topt = torch.optim.Adam(tmodel.parameters())
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
        impls["torch"] = torch_step
    cases = [Case("train step CNN", f"B{n} 1x28x28 adam", flops=3 * fwd, impls=impls)]

    # Python overhead: a tiny layer's forward + backward is all bookkeeping.
    lin = nn.Linear(16, 16)
    small = tensor(rng.standard_normal((4, 16)).astype(dtype))
    impls = {"pyfastnn": lambda: lin(small).sum().backward()}
    if torch is not None:
        tlin = torch.nn.Linear(16, 16)
        tsmall = torch.from_numpy(small.numpy())
        impls["torch"] = lambda: tlin(tsmall).sum().backward()
    cases.append(Case("overhead Linear", "16x16 B4 fwd+bwd", flops=3 * 2.0 * 4 * 16 * 16, impls=impls))
    return cases


def _keras_cnn(layers, Sequential):
    return Sequential([layers.Input(shape=(28, 28, 1)), layers.Conv2D(32, (3, 3), activation="relu"),
                       layers.MaxPooling2D((2, 2)), layers.Conv2D(64, (3, 3), activation="relu"),
                       layers.MaxPooling2D((2, 2)), layers.Flatten(), layers.Dense(128, activation="relu"),
                       layers.Dense(10, activation="softmax")])


def keras_cases(torch=None, dtype=np.float32):
    """One epoch of Keras-style fit of the tutorial CNN on 1,792 images of 28x28x1 at
    batch 64: pyfastnn.keras against Keras 3 (whatever backend it loads; KERAS_BACKEND
    picks) and a hand-written PyTorch loop."""
    import os
    from .. import keras as pk
    rng = np.random.default_rng(0)
    n = 1792
    x = rng.random((n, 28, 28, 1)).astype(dtype)
    y = rng.integers(0, 10, n)
    fwd = 2.0 * 64 * (32 * 9 * 26 * 26 + 64 * 32 * 9 * 11 * 11 + 1600 * 128 + 128 * 10) * (n / 64)
    model = _keras_cnn(pk.layers, pk.Sequential)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    impls = {"pyfastnn": lambda: model.fit(x, y, epochs=1, batch_size=64, verbose=0)}
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
        kmodel = _keras_cnn(keras.layers, keras.Sequential)
        kmodel.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        impls["keras"] = lambda: kmodel.fit(x, y, epochs=1, batch_size=64, verbose=0)
    except ImportError:
        pass
    if torch is not None:
        tmodel = _tutorial_cnn(torch.nn)
        topt = torch.optim.Adam(tmodel.parameters())
        tx, ty = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)

        def torch_epoch():
            perm = torch.randperm(n)
            for i in range(0, n, 64):
                idx = perm[i:i + 64]
                loss = torch.nn.functional.cross_entropy(tmodel(tx[idx]), ty[idx])
                topt.zero_grad()
                loss.backward()
                topt.step()
        impls["torch"] = torch_epoch
    return [Case("keras fit epoch CNN", f"{n}x28x28x1 B64", flops=3 * fwd, impls=impls)]


ALL = {"matmul": gemm_cases, "conv": conv_cases, "pool": pool_cases, "lstm": lstm_cases, "optim": optim_cases,
       "attention": attention_cases, "train": train_cases,
       "keras": keras_cases}
