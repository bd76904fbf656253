"""Benchmark cases per op, each with its NumPy and PyTorch twin."""
from __future__ import annotations

import os

import numpy as np

from .. import get_num_threads, ops
from .. import keras as pk
from .. import nn, optim, tensor
from .model_cases import model_cases
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


def _jpeg_folder(root, per_class, seed=0):
    """root/{china,flower}/*.jpg: crops of scikit-learn's two sample photographs, varied sizes (a real
    folder of JPEG files, as the tutorials train from)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    for name, photo in zip(("china", "flower"), load_sample_images().images):
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            side = int(rng.integers(160, 400))
            top, left = int(rng.integers(0, photo.shape[0] - side)), int(rng.integers(0, photo.shape[1] - side))
            Image.fromarray(photo[top:top + side, left:left + side]).save(os.path.join(folder, f"{i:04d}.jpg"),
                                                                          quality=90)
    return root


def _tutorial_1_model(layers, Sequential):
    return Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(150, 150, 3)), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dense(1, activation="sigmoid")])


_TUTORIAL_AUGMENTATION = dict(rescale=1. / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                              shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")


def keras_tutorial_cases(torch=None, dtype=np.float32):
    """Issue 19's tutorials against tf.keras 2 (`pip install tf-keras`; the API they are written for), shown
    in the 'keras' columns: 20 steps of the augmented-CNN tutorial from a folder of JPEG files (batches of 32
    at 150x150), and VGG16 feature extraction (include_top=False, 224x224, batch 8). The data-wait share of
    pyfastnn's fit is printed after the run."""
    import tempfile
    import warnings
    conv_flops = [(3, 32, 148), (32, 64, 72), (64, 128, 34), (128, 128, 15)]
    fwd = 32 * (sum(2.0 * 9 * ci * co * s * s for ci, co, s in conv_flops) + 2.0 * 6272 * 512 + 2.0 * 512)
    root = _jpeg_folder(tempfile.mkdtemp(prefix="pyfastnn-bench-jpeg-"), per_class=320)   # 20 batches of 32

    def flow(module):
        return module.ImageDataGenerator(**_TUTORIAL_AUGMENTATION).flow_from_directory(
            root, target_size=(150, 150), batch_size=32, class_mode="binary")
    model = _tutorial_1_model(pk.layers, pk.Sequential)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    ours_flow = flow(pk.preprocessing.image)
    waits = []

    def ours_fit():
        waits.append(model.fit(ours_flow, steps_per_epoch=20, epochs=1, verbose=0).data_wait_seconds)
    impls_fit = {"pyfastnn": ours_fit}
    vgg_impls = {}
    x224 = np.random.default_rng(0).random((8, 224, 224, 3)).astype(np.float32)
    vgg = pk.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    vgg_impls["pyfastnn"] = lambda: vgg.predict_on_batch(x224)
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
        import tf_keras
        from tf_keras.src.preprocessing import image as tf_image
        tf.config.threading.set_intra_op_parallelism_threads(get_num_threads())
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tmodel = _tutorial_1_model(tf_keras.layers, tf_keras.Sequential)
        tmodel.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        tf_flow = flow(tf_image)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            impls_fit["keras"] = lambda: tmodel.fit(tf_flow, steps_per_epoch=20, epochs=1, verbose=0)
        tvgg = tf_keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
        vgg_impls["keras"] = lambda: tvgg.predict_on_batch(x224)
    except ImportError:
        pass
    vgg_fwd = 8 * sum(2.0 * 9 * ci * co * s * s for ci, co, s in
                      [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
                       (256, 256, 56), (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28),
                       (512, 512, 14), (512, 512, 14), (512, 512, 14)])
    cases = [Case("keras tutorial 1 fit", "20 steps B32 150x150 JPEG aug", flops=3 * 20 * fwd, impls=impls_fit),
             Case("keras VGG16 features", "B8 224x224 include_top=False", flops=vgg_fwd, impls=vgg_impls)]
    cases[0].notes = waits        # seconds the loop waited for batches, one entry per timed fit
    return cases


def newops_cases(torch=None, dtype=np.float32):
    """The ops inside GPT-2 / ResNet / diffusion training loops, at GPT-2-like shapes."""
    rng = np.random.default_rng(0)
    F = torch.nn.functional if torch is not None else None
    cases = []

    def case(op, shape, nbytes, mine, theirs=None):
        impls = {"pyfastnn": mine}
        if torch is not None and theirs is not None:
            impls["torch"] = theirs
        cases.append(Case(op, shape, bytes=nbytes, impls=impls))

    # embedding 50257x768, 4x256 tokens: row gather, then the dense gradient
    V, D = 50257, 768
    w = (0.02 * rng.standard_normal((V, D))).astype(dtype)
    tokens = rng.integers(0, V, (4, 256))
    gy = rng.standard_normal((4, 256, D)).astype(dtype)
    tw, ttok, tgy = (torch.from_numpy(a) for a in (w, tokens, gy)) if torch is not None else (None,) * 3

    def torch_embedding_both():
        wr = tw.detach().requires_grad_()
        F.embedding(ttok, wr).backward(tgy)
        return wr.grad
    case("embedding fwd", f"{V}x{D}, 4x256", 2 * gy.nbytes, lambda: ops.embedding(w, tokens),
         lambda: F.embedding(ttok, tw))
    case("embedding fwd+bwd", f"{V}x{D}, 4x256", 4 * gy.nbytes,
         lambda: (ops.embedding(w, tokens), ops.embedding_backward(gy, tokens, V)), torch_embedding_both)

    # topk k=50 over 8 rows of the vocabulary (sampling), and cumsum over them (top-p)
    logits = rng.standard_normal((8, V)).astype(dtype)
    tl = torch.from_numpy(logits) if torch is not None else None
    for k in (1, 50):
        case("topk", f"8x{V}, k={k}", logits.nbytes, lambda k=k: ops.topk(logits, k),
             lambda k=k: torch.topk(tl, k))
    case("sort", f"8x{V}", 3 * logits.nbytes, lambda: ops.sort(logits), lambda: torch.sort(tl, stable=True))
    case("cumsum", f"8x{V}", 2 * logits.nbytes, lambda: ops.cumsum(logits, 1), lambda: torch.cumsum(tl, 1))

    # gelu_tanh (GPT-2's MLP) and silu over 4x256x3072, forward and backward
    h = rng.standard_normal((4, 256, 3072)).astype(dtype)
    gh = rng.standard_normal(h.shape).astype(dtype)
    th, tgh = (torch.from_numpy(a) for a in (h, gh)) if torch is not None else (None, None)
    for name, fwd, bwd, tfwd in (
            ("gelu_tanh", ops.gelu_tanh, ops.gelu_tanh_backward,
             (lambda t: F.gelu(t, approximate="tanh")) if F else None),
            ("silu", ops.silu, ops.silu_backward, F.silu if F else None)):
        case(name, "4x256x3072", 2 * h.nbytes, lambda fwd=fwd: fwd(h), lambda tfwd=tfwd: tfwd(th))

        def torch_both(tfwd=tfwd):
            hr = th.detach().requires_grad_()
            tfwd(hr).backward(tgh)
            return hr.grad
        case(name + " fwd+bwd", "4x256x3072", 5 * h.nbytes, lambda fwd=fwd, bwd=bwd: (fwd(h), bwd(gh, h)),
             torch_both)
    # the fused epilogue: GPT-2's c_fc, (1024 x 768) @ (768 x 3072) + bias, gelu_tanh
    a = rng.standard_normal((1024, 768)).astype(dtype)
    b = (rng.standard_normal((768, 3072)) / 28).astype(dtype)
    bias = rng.standard_normal(3072).astype(dtype)
    ta, tb, tbias = (torch.from_numpy(x) for x in (a, b, bias)) if torch is not None else (None,) * 3
    impls = {"pyfastnn": lambda: ops.matmul(a, b, bias, activation="gelu_tanh")}
    if torch is not None:
        impls["torch"] = lambda: F.gelu(torch.addmm(tbias, ta, tb), approximate="tanh")
    cases.append(Case("matmul+bias+gelu_tanh", "1024x3072x768", flops=2.0 * 1024 * 3072 * 768, impls=impls))

    # adaptive_avg_pool2d to 1x1: ResNet-50's head, forward and backward
    x = rng.standard_normal((16, 2048, 7, 7)).astype(dtype)
    gp = rng.standard_normal((16, 2048, 1, 1)).astype(dtype)
    tx, tgp = (torch.from_numpy(v) for v in (x, gp)) if torch is not None else (None, None)
    case("adaptive_avg_pool2d", "16x2048x7x7>1x1", x.nbytes, lambda: ops.adaptive_avg_pool2d(x, 1),
         lambda: F.adaptive_avg_pool2d(tx, 1))
    case("adaptive_avg_pool2d bwd", "16x2048x7x7>1x1", x.nbytes, lambda: ops.adaptive_avg_pool2d_backward(gp, x.shape),
         lambda: torch.ops.aten._adaptive_avg_pool2d_backward(tgp.expand(16, 2048, 1, 1), tx))
    case("adaptive_max_pool2d", "16x2048x7x7>1x1", x.nbytes, lambda: ops.adaptive_max_pool2d(x, 1),
         lambda: F.adaptive_max_pool2d(tx, 1, return_indices=True))

    # group_norm 16x64x56x56, 32 groups (diffusion U-Nets), forward and forward+backward
    xg = rng.standard_normal((16, 64, 56, 56)).astype(dtype)
    gg = rng.standard_normal(xg.shape).astype(dtype)
    wg = rng.standard_normal(64).astype(dtype)
    bg = rng.standard_normal(64).astype(dtype)
    txg, tgg, twg, tbg = (torch.from_numpy(v) for v in (xg, gg, wg, bg)) if torch is not None else (None,) * 4

    def group_norm_both():
        y, mean, rstd = ops.group_norm(xg, 32, wg, bg)
        return ops.group_norm_backward(gg, xg, mean, rstd, 32, wg)

    def torch_group_norm_both():
        xr, wr, br = (t.detach().requires_grad_() for t in (txg, twg, tbg))
        F.group_norm(xr, 32, wr, br).backward(tgg)
        return xr.grad, wr.grad, br.grad
    case("group_norm", "16x64x56x56, G=32", 2 * xg.nbytes, lambda: ops.group_norm(xg, 32, wg, bg),
         lambda: F.group_norm(txg, 32, twg, tbg))
    case("group_norm fwd+bwd", "16x64x56x56, G=32", 7 * xg.nbytes, group_norm_both, torch_group_norm_both)

    # gather / scatter_add (the backward of gather) along the vocabulary, and index_select of rows
    idx = rng.integers(0, V, (8, 256))
    src = rng.standard_normal((8, 256)).astype(dtype)
    tidx, tsrc = (torch.from_numpy(v) for v in (idx, src)) if torch is not None else (None, None)
    case("gather", f"8x{V}, 8x256", 2 * src.nbytes, lambda: ops.gather(logits, 1, idx),
         lambda: torch.gather(tl, 1, tidx))
    case("scatter_add", f"8x{V}, 8x256", logits.nbytes, lambda: ops.scatter_add(logits, 1, idx, src),
         lambda: torch.scatter_add(tl, 1, tidx, tsrc))
    rows = rng.integers(0, V, 1024)
    trows = torch.from_numpy(rows) if torch is not None else None
    case("index_select", f"{V}x{D}, 1024 rows", 2 * 1024 * D * 4, lambda: ops.index_select(w, 0, rows),
         lambda: torch.index_select(tw, 0, trows))
    return cases


ALL = {"matmul": gemm_cases, "conv": conv_cases, "pool": pool_cases, "lstm": lstm_cases, "optim": optim_cases,
       "attention": attention_cases, "train": train_cases,
       "keras": keras_cases, "keras_tutorial": keras_tutorial_cases, "newops": newops_cases, "models": model_cases}
QUICK = {"models"}   # the ops whose cases have a tiny variant (--quick)
