"""Trains torchvision's ResNet-18 (pyfastnn.models.resnet18, unchanged) on scikit-learn's handwritten
digits (offline), upscaled to 32x32 and repeated over the three colour channels, then saves the weights
in PyTorch's format (torch.load and torchvision's resnet18 read them) and evaluates the reloaded model.

    python examples/resnet_digits.py [--epochs 6] [--steps N]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

import pyfastnn
from pyfastnn import models, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _digits import _linear_resize_matrix  # noqa: E402


def load_digits_32(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    m = _linear_resize_matrix(8, 32)
    big = np.einsum("ij,njk,lk->nil", m, digits.images / 16.0, m)            # (N, 32, 32)
    x = ((big - 0.3) / 0.4).astype(np.float32)[:, None].repeat(3, axis=1)    # three channels, roughly centred
    return train_test_split(x, digits.target.astype(np.int64), test_size=0.25, random_state=seed,
                            stratify=digits.target)


@pyfastnn.no_grad()
def accuracy(model, x, y, batch=256):
    model.eval()
    hits = sum(int((model(x[i:i + batch]).numpy().argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    model.train()
    return hits / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many optimizer steps (quick mode)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pyfastnn.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    start = time.time()
    x_train, x_test, y_train, y_test = load_digits_32(args.seed)
    model = models.resnet18(num_classes=10)
    print(f"digits: {len(x_train)} train / {len(x_test)} test images 3x32x32; ResNet-18, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    steps_per_epoch = (len(x_train) + args.batch - 1) // args.batch
    total = min(args.steps or 10**9, steps_per_epoch * args.epochs)
    opt = pyfastnn.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = pyfastnn.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss()
    step, t0 = 0, time.time()
    model.train()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if step == total:
                break
        print(f"epoch {epoch}: train loss {np.mean(losses):.3f}, test accuracy {accuracy(model, x_test, y_test):.3f} "
              f"({time.time() - t0:.0f}s, {step} steps)")
        if step == total:
            break
    path = os.path.join(tempfile.mkdtemp(prefix="resnet-digits-"), "resnet18_digits.pth")
    pyfastnn.save(model.state_dict(), path)           # PyTorch's zip format: torch.load reads it
    reloaded = models.resnet18(weights=path)           # num_classes=10 taken from the checkpoint
    print(f"saved {path} ({os.path.getsize(path) / 1e6:.0f} MB) and loaded it back")
    print(f"final test accuracy {accuracy(reloaded, x_test, y_test):.3f} (chance 0.100) in "
          f"{time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
