"""Trains a small BERT from scratch to tell which standard-library package a docstring comes from
(asyncio, email, logging, multiprocessing, unittest or xml), on the docstrings of the Python installation
itself (offline), with a WordPiece tokenizer trained by the `tokenizers` package. The model is saved with
save_pretrained (label names in config.json), loaded back and evaluated on held-out docstrings.

    python examples/bert_classify.py [--epochs 12] [--steps N] [--out bert-docstrings]
"""
import argparse
import importlib
import inspect
import os
import pkgutil
import tempfile
import time
import warnings

import numpy as np

import pyfastnn
from pyfastnn import models
from pyfastnn.hub._optional import require

PACKAGES = ("asyncio", "email", "logging", "multiprocessing", "unittest", "xml")


def _modules(package):
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if "test" in info.name.split(".")[1:] or info.name.endswith("__main__"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield importlib.import_module(info.name)
        except Exception:          # optional dependencies of a submodule (e.g. a missing C extension)
            continue


def docstrings(package):
    """Every docstring of the package's modules, classes, functions and methods with 5+ words."""
    found = set()
    for module in _modules(package):
        objects = [module]
        for _, obj in inspect.getmembers(module):
            own = getattr(obj, "__module__", None) == module.__name__
            if own and (inspect.isclass(obj) or inspect.isfunction(obj)):
                objects.append(obj)
                if inspect.isclass(obj):
                    objects += [v for v in vars(obj).values() if inspect.isfunction(v)]
        for obj in objects:
            doc = inspect.getdoc(obj)
            if doc and len(doc.split()) >= 5:
                found.add(" ".join(doc.split()))
    return sorted(found)


def load_data(seed=0, test_fraction=0.2):
    """(train_texts, train_labels, test_texts, test_labels): a split stratified by package; a docstring that
    two packages share is dropped."""
    per_package = {p: docstrings(p) for p in PACKAGES}
    owners = {}
    for label, package in enumerate(PACKAGES):
        for doc in per_package[package]:
            owners.setdefault(doc, set()).add(label)
    rng = np.random.RandomState(seed)
    train, test = [], []
    for label, package in enumerate(PACKAGES):
        docs = [d for d in per_package[package] if len(owners[d]) == 1]
        rng.shuffle(docs)
        cut = int(len(docs) * test_fraction)
        test += [(d, label) for d in docs[:cut]]
        train += [(d, label) for d in docs[cut:]]
    rng.shuffle(train)
    return [t for t, _ in train], np.array([y for _, y in train]), [t for t, _ in test], np.array([y for _, y in test])


def train_tokenizer(texts, vocab_size, directory):
    tokenizers = require("tokenizers", "examples/bert_classify.py")
    wordpiece = tokenizers.BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, show_progress=False)
    wordpiece.save_model(directory)                 # vocab.txt, which BertTokenizer reads
    return models.BertTokenizer.from_pretrained(directory)


@pyfastnn.no_grad()
def accuracy(model, tokenizer, texts, labels, max_length, batch=64):
    model.eval()
    hits = 0
    for i in range(0, len(texts), batch):
        enc = tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=max_length, return_tensors="np")
        logits = model(enc["input_ids"], attention_mask=enc["attention_mask"]).logits.numpy()
        hits += int((logits.argmax(-1) == labels[i:i + batch]).sum())
    model.train()
    return hits / len(texts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many optimizer steps (quick mode)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default=None, help="directory to save to (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pyfastnn.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    out = args.out or tempfile.mkdtemp(prefix="bert-docstrings-")
    os.makedirs(out, exist_ok=True)

    start = time.time()
    x_train, y_train, x_test, y_test = load_data(args.seed)
    tokenizer = train_tokenizer(x_train, args.vocab, out)
    counts = np.bincount(y_train, minlength=len(PACKAGES))
    majority = np.bincount(y_test).max() / len(y_test)
    print(f"docstrings: {len(x_train)} train / {len(x_test)} test, per package "
          f"{dict(zip(PACKAGES, counts.tolist()))}; majority-class accuracy {majority:.3f} "
          f"({time.time() - start:.1f}s)")

    config = models.BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=128, max_position_embeddings=args.max_length,
                               id2label=dict(enumerate(PACKAGES)), label2id={p: i for i, p in enumerate(PACKAGES)},
                               pad_token_id=tokenizer.pad_token_id)
    model = models.BertForSequenceClassification(config)
    print(f"BERT: 2 layers, hidden 64, {model.num_parameters() / 1e6:.2f}M parameters")
    opt = pyfastnn.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = (len(x_train) + args.batch - 1) // args.batch
    total = min(args.steps or 10**9, steps_per_epoch * args.epochs)
    schedule = pyfastnn.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.1)
    step, t0 = 0, time.time()
    model.train()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            enc = tokenizer([x_train[j] for j in idx], padding=True, truncation=True, max_length=args.max_length,
                            return_tensors="np")
            out_ = model(enc["input_ids"], attention_mask=enc["attention_mask"], labels=y_train[idx])
            opt.zero_grad()
            out_.loss.backward()
            opt.step()
            schedule.step()
            losses.append(out_.loss.item())
            step += 1
            if step == total:
                break
        acc = accuracy(model, tokenizer, x_test, y_test, args.max_length)
        print(f"epoch {epoch}: train loss {np.mean(losses):.3f}, test accuracy {acc:.3f} "
              f"({time.time() - t0:.0f}s, {step} steps)")
        if step == total:
            break

    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    reloaded = models.AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = models.AutoTokenizer.from_pretrained(out)
    final = accuracy(reloaded, tokenizer, x_test, y_test, args.max_length)
    sample = "Return a list of the email addresses found in the header, decoded."
    logits = reloaded(**{k: v for k, v in tokenizer(sample, return_tensors="np").items()}).logits.numpy()
    print(f"saved to {out}; {sample!r} -> {reloaded.config.id2label[int(logits.argmax())]}")
    print(f"final test accuracy {final:.3f} (chance {1 / len(PACKAGES):.3f}) in {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
