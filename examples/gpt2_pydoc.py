"""Trains a small GPT-2 from scratch on Python's own documentation — the help topics of the standard
library's pydoc_data.topics module (about 0.5 MB of text, offline) — with a byte-level BPE tokenizer
trained by the `tokenizers` package, saves model and tokenizer with save_pretrained (files transformers
reads), loads them back and samples text.

    python examples/gpt2_pydoc.py [--steps 400] [--out gpt2-pydoc]
"""
import argparse
import math
import os
import tempfile
import time

import numpy as np

import pyfastnn
from pyfastnn import models
from pyfastnn.hub._optional import require


def load_topics(seed=0):
    """The help topics' texts, split by topic into training and held-out text."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    rng = np.random.RandomState(seed)
    rng.shuffle(names)
    held_out = set(names[: max(1, len(names) // 10)])
    train = [topics[n] for n in names if n not in held_out]
    val = [topics[n] for n in names if n in held_out]
    return train, val


def train_tokenizer(texts, vocab_size, directory):
    """A byte-level BPE (GPT-2's kind) trained on texts, saved as vocab.json + merges.txt, read back as
    pyfastnn's GPT2Tokenizer."""
    tokenizers = require("tokenizers", "examples/gpt2_pydoc.py")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    bpe.save_model(directory)
    return models.GPT2Tokenizer.from_pretrained(directory)


def encode(tokenizer, texts):
    eot = tokenizer.eos_token_id
    ids = []
    for ids_one in tokenizer(texts)["input_ids"]:
        ids.extend(ids_one)
        ids.append(eot)
    return np.array(ids, np.int64)


def batches(data, block, batch, rng):
    starts = rng.randint(0, len(data) - block - 1, batch)
    x = np.stack([data[s:s + block] for s in starts])
    return x, x      # GPT-2's labels are the inputs: the model shifts them


@pyfastnn.no_grad()
def evaluate(model, data, block, batches_=4, batch=32):
    model.eval()
    rng = np.random.RandomState(123)
    losses = [model(x, labels=y).loss.item() for x, y in (batches(data, block, batch, rng) for _ in range(batches_))]
    model.train()
    return float(np.mean(losses))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--dim", type=int, default=96)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--out", default=None, help="directory to save to (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pyfastnn.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    out = args.out or tempfile.mkdtemp(prefix="gpt2-pydoc-")
    os.makedirs(out, exist_ok=True)

    start = time.time()
    train_texts, val_texts = load_topics(args.seed)
    tokenizer = train_tokenizer(train_texts, args.vocab, out)
    train, val = encode(tokenizer, train_texts), encode(tokenizer, val_texts)
    print(f"pydoc topics: {len(train_texts)} train / {len(val_texts)} held-out topics, {len(train)} / {len(val)} "
          f"tokens, vocabulary {len(tokenizer)} ({time.time() - start:.1f}s)")

    config = models.GPT2Config(vocab_size=len(tokenizer), n_positions=args.block, n_embd=args.dim,
                               n_layer=args.layers, n_head=4, bos_token_id=tokenizer.eos_token_id,
                               eos_token_id=tokenizer.eos_token_id, resid_pdrop=0.0, embd_pdrop=0.0,
                               attn_pdrop=0.0)
    model = models.GPT2LMHeadModel(config)
    print(f"GPT-2: {args.layers} layers, n_embd {args.dim}, {model.num_parameters() / 1e6:.2f}M parameters")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = pyfastnn.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                               lr=args.lr, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 20)
    schedule = pyfastnn.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    first_val = evaluate(model, val, args.block)
    print(f"step 0: held-out loss {first_val:.3f}")
    model.train()
    running, t0 = None, time.time()
    for step in range(1, args.steps + 1):
        x, y = batches(train, args.block, args.batch, rng)
        loss = model(x, labels=y).loss
        opt.zero_grad()
        loss.backward()
        pyfastnn.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % max(10, args.steps // 10) == 0 or step == args.steps:
            print(f"step {step}: train loss {running:.3f}, held-out loss {evaluate(model, val, args.block):.3f} "
                  f"({(time.time() - t0) / step:.2f}s/step)")

    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    reloaded = models.GPT2LMHeadModel.from_pretrained(out)
    tokenizer = models.AutoTokenizer.from_pretrained(out)
    final = evaluate(reloaded, val, args.block)
    print(f"saved to {out}: {', '.join(sorted(os.listdir(out)))}")
    for prompt in ("The for statement", "Exceptions"):
        ids = tokenizer(prompt, return_tensors="np")["input_ids"]
        pyfastnn.manual_seed(args.seed)
        sample = reloaded.generate(ids, max_new_tokens=60, do_sample=True, temperature=0.8, top_k=40)
        print(f"--- sample: {tokenizer.decode(sample.numpy()[0])!r}")
    print(f"final held-out loss {final:.3f} (perplexity {math.exp(final):.1f}; at the start {first_val:.3f}) "
          f"in {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
