"""Whole-model benchmark cases (issue 21): ResNet-50, BERT-base and GPT-2 124M in pyfastnn.models against
PyTorch eager with the same random weights (transformers' classes for the text models, a torchvision-layout
ResNet written here, since torchvision does not load), and ONNX Runtime for ResNet-50 inference.

`quick=True` builds the same cases on tiny configurations, so CI can smoke-run every line of this file in
seconds; the figures of a quick run mean nothing.

Peak memory of a training step is measured in a child process per library (`python -m
pyfastnn.bench.model_cases --peak-rss CASE --lib NAME`), so one library's allocations and imported runtime
never count against the other."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import pyfastnn

from .. import models, nn, no_grad, optim, tensor
from .runner import Case

# (batch, image side) for ResNet-50 inference; the table, then the tiny CI variant
RESNET_FULL = {"layers": [3, 4, 6, 3], "classes": 1000, "side": 224, "infer_batches": (1, 16), "train_batch": 16}
RESNET_QUICK = {"layers": [1, 1, 1, 1], "classes": 10, "side": 32, "infer_batches": (1, 2), "train_batch": 2}
BERT_FULL = {"config": {}, "batch": 8, "seq": 128}
BERT_QUICK = {"config": {"vocab_size": 120, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                         "intermediate_size": 64, "max_position_embeddings": 64}, "batch": 2, "seq": 16}
GPT2_FULL = {"config": {}, "batch": 4, "seq": 256, "prompt": 32, "new_tokens": 64}
GPT2_QUICK = {"config": {"vocab_size": 130, "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64},
              "batch": 2, "seq": 16, "prompt": 4, "new_tokens": 8}


def _optional(name):
    """An optional peer library (transformers, onnxruntime, onnx), or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# ------------------------------------------------------------------ ResNet-50
def torch_resnet(torch, layers, num_classes):
    """torchvision's ResNet (V1.5 bottleneck, stride on the 3x3) in plain torch: the same module tree and
    state_dict keys as pyfastnn.models.ResNet, so one state dict loads into both."""
    tnn = torch.nn

    class Bottleneck(tnn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = tnn.BatchNorm2d(planes * 4)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            out += identity
            return self.relu(out)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.inplanes = 64
            self.conv1 = tnn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(64, layers[0], 1)
            self.layer2 = self._make_layer(128, layers[1], 2)
            self.layer3 = self._make_layer(256, layers[2], 2)
            self.layer4 = self._make_layer(512, layers[3], 2)
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(2048, num_classes)

        def _make_layer(self, planes, blocks, stride):
            downsample = None
            if stride != 1 or self.inplanes != planes * 4:
                downsample = tnn.Sequential(tnn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                            tnn.BatchNorm2d(planes * 4))
            out = [Bottleneck(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * 4
            out += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
            return tnn.Sequential(*out)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def conv_linear_flops(model, x):
    """Forward FLOPs (2 per multiply-add) of every Conv2d and Linear, counted from the shapes one forward
    pass produces (forward hooks), so the count follows the model as built."""
    total = [0.0]

    def conv_hook(m, inputs, out):
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        total[0] += 2.0 * out.numel() * k

    def linear_hook(m, inputs, out):
        total[0] += 2.0 * out.numel() * m.weight.shape[1]

    handles = [m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with no_grad():
        model(tensor(x))
    for h in handles:
        h.remove()
    return total[0]


def _onnx_session(torch, tmodel, side, ort, threads):
    """ONNX Runtime on the torch model exported with a dynamic batch dimension, all graph optimisations on,
    `threads` intra-op threads (the session ONNX Runtime's users run)."""
    path = os.path.join(tempfile.mkdtemp(prefix="pyfastnn-bench-"), "resnet.onnx")
    x = torch.zeros(1, 3, side, side)
    with torch.no_grad():
        torch.onnx.export(tmodel, (x,), path, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def resnet_cases(torch=None, quick=False):
    cfg = RESNET_QUICK if quick else RESNET_FULL
    rng = np.random.default_rng(0)
    model = models.ResNet(models.resnet.Bottleneck, cfg["layers"], num_classes=cfg["classes"])
    side = cfg["side"]
    flops_per_image = conv_linear_flops(model.eval(), rng.standard_normal((1, 3, side, side), np.float32))
    tmodel = ort_session = None
    if torch is not None:
        tmodel = torch_resnet(torch, cfg["layers"], cfg["classes"])
        tmodel.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
        ort = _optional("onnxruntime")
        if ort is not None and _optional("onnx") is not None:
            ort_session = _onnx_session(torch, tmodel.eval(), side, ort, pyfastnn.get_num_threads())
    label = "ResNet-50" if not quick else "ResNet tiny"
    cases = []
    for batch in cfg["infer_batches"]:
        x = rng.standard_normal((batch, 3, side, side), np.float32)
        xt = tensor(x)

        def infer(xt=xt):
            model.eval()
            with no_grad():
                return model(xt)
        impls = {"pyfastnn": infer}
        if tmodel is not None:
            tx = torch.from_numpy(x)

            def torch_infer(tx=tx):
                tmodel.eval()
                with torch.inference_mode():
                    return tmodel(tx)
            impls["torch"] = torch_infer
        if ort_session is not None:
            impls["ort"] = lambda x=x: ort_session.run(None, {"x": x})
        cases.append(Case(f"{label} inference", f"B{batch} {side}x{side}", flops=batch * flops_per_image,
                          impls=impls, rounds=5, min_calls=2))
    batch = cfg["train_batch"]
    x = rng.standard_normal((batch, 3, side, side), np.float32)
    y = rng.integers(0, cfg["classes"], batch)
    xt = tensor(x)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train():
        model.train()
        loss = nn.functional.cross_entropy(model(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    impls = {"pyfastnn": train}
    if tmodel is not None:
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_train():
            tmodel.train()
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
            return loss
        impls["torch"] = torch_train
    cases.append(Case(f"{label} train step", f"B{batch} {side}x{side} SGD", flops=3 * batch * flops_per_image,
                      impls=impls, rounds=3, min_calls=1))
    return cases


# ------------------------------------------------------------------ BERT-base
def transformer_flops(layers, hidden, inner, tokens, keys_per_query, vocab_out=0):
    """Forward FLOPs of a transformer stack: per token and layer the four hidden x hidden projections, the
    two MLP GEMMs and the two attention products over keys_per_query keys (half the sequence when causal),
    plus an output projection onto vocab_out classes."""
    per_token = layers * (4 * hidden * hidden + 2 * hidden * inner + 2 * keys_per_query * hidden)
    return 2.0 * tokens * (per_token + hidden * vocab_out)


def _padded_batch(rng, batch, seq, vocab, lo):
    """Token ids (batch, seq) right-padded with 0 after a random length in [lo, seq], and their mask."""
    lengths = rng.integers(lo, seq + 1, batch)
    lengths[0] = seq                                    # the longest fills the batch, as a padded loader's
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, vocab, (batch, seq)) * mask
    return ids.astype(np.int64), mask


def bert_cases(torch=None, quick=False):
    cfg = BERT_QUICK if quick else BERT_FULL
    rng = np.random.default_rng(1)
    model = models.BertForSequenceClassification(models.BertConfig(num_labels=2, **cfg["config"]))
    c = model.config
    batch, seq = cfg["batch"], cfg["seq"]
    ids, mask = _padded_batch(rng, batch, seq, c.vocab_size, seq // 2)
    labels = rng.integers(0, 2, batch)
    flops = transformer_flops(c.num_hidden_layers, c.hidden_size, c.intermediate_size, batch * seq, seq)
    transformers = _optional("transformers") if torch is not None else None
    tmodel = None
    if transformers is not None:
        hf_cfg = transformers.BertConfig(num_labels=2, attn_implementation="sdpa", **cfg["config"])
        tmodel = transformers.BertForSequenceClassification(hf_cfg)
        model.load_hf_state_dict(tmodel.state_dict(), source="the torch reference")
    label = "BERT-base" if not quick else "BERT tiny"

    def infer():
        model.eval()
        with no_grad():
            return model(input_ids=ids, attention_mask=mask).logits
    impls = {"pyfastnn": infer}
    if tmodel is not None:
        tids, tmask, tlabels = torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(labels)

        def torch_infer():
            tmodel.eval()
            with torch.inference_mode():
                return tmodel(input_ids=tids, attention_mask=tmask).logits
        impls["torch"] = torch_infer
    cases = [Case(f"{label} inference", f"{batch}x{seq} padded", flops=flops, impls=impls, rounds=3, min_calls=2)]

    opt = optim.AdamW(model.parameters(), lr=2e-5)

    def finetune():
        model.train()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    impls = {"pyfastnn": finetune}
    if tmodel is not None:
        topt = torch.optim.AdamW(tmodel.parameters(), lr=2e-5)

        def torch_finetune():
            tmodel.train()
            loss = tmodel(input_ids=tids, attention_mask=tmask, labels=tlabels).loss
            topt.zero_grad()
            loss.backward()
            topt.step()
            return loss
        impls["torch"] = torch_finetune
    cases.append(Case(f"{label} fine-tune step", f"{batch}x{seq} AdamW", flops=3 * flops, impls=impls, rounds=3,
                      min_calls=1))
    return cases


# ------------------------------------------------------------------ GPT-2 124M
def _gpt2_pair(torch, cfg):
    """(pyfastnn GPT2LMHeadModel, transformers' GPT2LMHeadModel or None) with the same random weights."""
    model = models.GPT2LMHeadModel(models.GPT2Config(**cfg["config"]))
    transformers = _optional("transformers") if torch is not None else None
    if transformers is None:
        return model, None
    tmodel = transformers.GPT2LMHeadModel(transformers.GPT2Config(attn_implementation="sdpa", **cfg["config"]))
    model.load_hf_state_dict(tmodel.state_dict(), source="the torch reference")
    return model, tmodel


def _gpt2_train_step(lib, model, ids, torch=None):
    """One AdamW step of causal-LM training on ids (labels = the ids, shifted inside the model)."""
    if lib == "torch":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.from_numpy(ids)
    else:
        opt = optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        model.train()
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


def gpt2_cases(torch=None, quick=False):
    cfg = GPT2_QUICK if quick else GPT2_FULL
    rng = np.random.default_rng(2)
    model, tmodel = _gpt2_pair(torch, cfg)
    c = model.config
    batch, seq = cfg["batch"], cfg["seq"]
    ids = rng.integers(0, c.vocab_size, (batch, seq)).astype(np.int64)
    flops = transformer_flops(c.n_layer, c.n_embd, 4 * c.n_embd, batch * seq, (seq + 1) / 2, c.vocab_size)
    label = "GPT-2 124M" if not quick else "GPT-2 tiny"
    impls = {"pyfastnn": _gpt2_train_step("pyfastnn", model, ids)}
    if tmodel is not None:
        impls["torch"] = _gpt2_train_step("torch", tmodel, ids, torch)
    memory = (lambda: {f"{lib}_peak_rss_mb": peak_rss_mb("gpt2-train", lib, quick)
                       for lib in (("pyfastnn", "torch") if tmodel is not None else ("pyfastnn",))})
    cases = [Case(f"{label} train step", f"{batch}x{seq} AdamW", flops=3 * flops, impls=impls, rounds=3,
                  min_calls=1, extras=memory)]

    # greedy decoding: the prompt, then new_tokens tokens one at a time over the key/value cache; eos is
    # switched off so every call produces all of them
    prompt = rng.integers(0, c.vocab_size, (1, cfg["prompt"])).astype(np.int64)
    new = cfg["new_tokens"]
    model.config.eos_token_id = None

    def decode():
        model.eval()
        return model.generate(prompt, max_new_tokens=new, do_sample=False)
    impls = {"pyfastnn": decode}
    if tmodel is not None:
        tmodel.generation_config.eos_token_id = None
        tmodel.generation_config.pad_token_id = 0
        tprompt = torch.from_numpy(prompt)

        def torch_decode():
            tmodel.eval()
            with torch.inference_mode():
                return tmodel.generate(tprompt, attention_mask=torch.ones_like(tprompt), max_new_tokens=new,
                                       min_new_tokens=new, do_sample=False)
        impls["torch"] = torch_decode
    n_params = sum(p.numel() for p in model.parameters())   # lm_head is tied: counted once, read once
    # per token: every weight read once, plus the filled key/value cache (average length)
    kv = 2 * c.n_layer * c.n_embd * (cfg["prompt"] + new / 2)
    cases.append(Case(f"{label} greedy decode", f"{new} after {cfg['prompt']}", bytes=4.0 * (n_params + kv) * new,
                      impls=impls, rounds=3, min_calls=1, items=new, item="token"))
    return cases


def model_cases(torch=None, dtype=np.float32, quick=False):
    """Every issue-21 case: ResNet-50, BERT-base, GPT-2 (tiny configurations with quick)."""
    return resnet_cases(torch, quick) + bert_cases(torch, quick) + gpt2_cases(torch, quick)


# ------------------------------------------------------------------ peak memory in a child process
def peak_rss_mb(case, lib, quick=False):
    """Peak resident memory (MB) of a child process that builds the case's model in `lib` alone and runs
    three steps: the kernel's high-water mark of its address space (VmHWM; ru_maxrss would carry the
    parent's figure across the fork and exec)."""
    cmd = [sys.executable, "-m", "pyfastnn.bench.model_cases", "--peak-rss", case, "--lib", lib,
           "--threads", str(pyfastnn.get_num_threads())] + (["--quick"] if quick else [])
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        raise RuntimeError(f"peak memory of {case} in {lib} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def _child_peak_rss(case, lib, quick, threads):
    if case != "gpt2-train":
        raise ValueError(f"--peak-rss: unknown case {case!r} (known: gpt2-train)")
    cfg = GPT2_QUICK if quick else GPT2_FULL
    ids = np.random.default_rng(2).integers(0, 50257 if not quick else cfg["config"]["vocab_size"],
                                            (cfg["batch"], cfg["seq"])).astype(np.int64)
    pyfastnn.set_num_threads(threads)
    if lib == "torch":
        torch = importlib.import_module("torch")
        torch.set_num_threads(threads)
        transformers = importlib.import_module("transformers")
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(attn_implementation="sdpa", **cfg["config"]))
        step = _gpt2_train_step("torch", model, ids, torch)
    elif lib == "pyfastnn":
        step = _gpt2_train_step("pyfastnn", models.GPT2LMHeadModel(models.GPT2Config(**cfg["config"])), ids)
    else:
        raise ValueError(f"--lib: unknown library {lib!r} (pyfastnn or torch)")
    for _ in range(3):
        step()
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pyfastnn.bench.model_cases",
                                description="peak memory of one model case in one library (a child of the bench)")
    p.add_argument("--peak-rss", required=True, metavar="CASE")
    p.add_argument("--lib", required=True)
    p.add_argument("--threads", type=int, default=pyfastnn.get_num_threads())
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    print(json.dumps({"peak_rss_mb": _child_peak_rss(args.peak_rss, args.lib, args.quick, args.threads)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
