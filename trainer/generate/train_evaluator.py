"""Train the Fashion-MNIST evaluator (issue 4 section 2): the small ResNet of
``trainer/generate/model.py`` (:class:`Classifier`) with BN or with the mixture-of-affine AN (Li et al. 2019).

SGD (momentum 0.9, Nesterov, weight decay 5e-4 on conv/linear weights), lr 0.1 with a cosine
schedule, batch 128, random horizontal flips and +-2 px shifts; trained on the 60,000 training
images, accuracy measured on the 10,000 test images. Writes ``<out>/model.pt`` (weights, args,
test accuracy) and ``<out>/summary.json``. Progress lines: epoch, step, loss, train accuracy,
images/s, ETA.

Usage: ``/usr/bin/python3 -m trainer generate train-evaluator --out runs/clf-an --norm an --epochs 3``.
"""
from __future__ import annotations

import json
import math
import os
import time
from argparse import Namespace

import numpy as np
import torch
import torch.nn.functional as F

from . import data as fashion
from .model import Classifier


def build_classifier(a: Namespace | dict) -> Classifier:
    """Classifier from saved hyper-parameters (``width``, ``norm`` "bn" | "an", ``k``)."""
    a = a if isinstance(a, dict) else vars(a)
    return Classifier(width=a["width"], norm=a["norm"], k=a["k"])


def load_classifier(path: str, device: str = "cpu") -> Classifier:
    """The trained evaluator from ``model.pt``, in eval mode."""
    ck = torch.load(path, map_location=device)
    net = build_classifier(ck["args"])
    net.load_state_dict(ck["model"])
    return net.eval().to(device)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to 2 px (zero = -1 padding). x: B x 1 x 28 x 28."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx, dy = (int(v) for v in torch.randint(0, 5, (2,), generator=gen))
    return padded[:, :, dy:dy + 28, dx:dx + 28]


@torch.no_grad()
def accuracy(net: Classifier, x: np.ndarray, y: np.ndarray, device: torch.device, batch: int = 500) -> float:
    """Top-1 accuracy of ``net`` (eval mode) on uint8 images ``x`` N x 28 x 28 and labels ``y``."""
    net.eval()
    correct = 0
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(fashion.to_signed(x[i:i + batch])).to(device)
        correct += int((net(xb).argmax(1).cpu().numpy() == y[i:i + batch]).sum())
    return correct / len(x)


def train(args: Namespace) -> dict:
    """Train one classifier (see module doc); returns the summary (also ``<out>/summary.json``) with
    ``test_accuracy`` in [0, 1] on the 10,000 test images."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    xtr, ytr = fashion.load("train")
    xte, yte = fashion.load("test")
    net = build_classifier(args).to(device)
    decay = [p for n, p in net.named_parameters() if p.dim() > 1 and "gamma" not in n and "beta" not in n]
    rest = [p for n, p in net.named_parameters() if not (p.dim() > 1 and "gamma" not in n and "beta" not in n)]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    steps_per_epoch = len(xtr) // args.batch
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    print(f"[data] Fashion-MNIST {len(xtr)} train / {len(xte)} test; {args.norm} classifier, "
          f"{sum(p.numel() for p in net.parameters())} parameters, {total} steps", flush=True)
    t0 = time.time()
    step = 0
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen).numpy()
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[i * args.batch:(i + 1) * args.batch]
            xb = augment(torch.from_numpy(fashion.to_signed(xtr[idx])), gen).to(device)
            yb = torch.from_numpy(ytr[idx]).to(device)
            for g in opt.param_groups:
                g["lr"] = 0.5 * args.lr * (1 + math.cos(math.pi * step / total))
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % args.log_every == 0 or step == total:
                el = time.time() - t0
                print(f"[train] epoch {epoch + 1}/{args.epochs} step {step}/{total} loss {loss.item():.4f} "
                      f"acc {(logits.argmax(1) == yb).float().mean().item():.3f} {step * args.batch / el:.0f} img/s "
                      f"ETA {(total - step) * el / step / 60:.1f}min", flush=True)
    acc = accuracy(net, xte, yte, device)
    summary = {"norm": args.norm, "k": args.k, "width": args.width, "epochs": args.epochs, "steps": total, "lr": args.lr,
               "test_accuracy": acc, "parameters": sum(p.numel() for p in net.parameters()),
               "wall_time_s": round(time.time() - t0, 1), "seed": args.seed, "threads": args.threads}
    torch.save({"model": net.state_dict(), "args": vars(args), "test_accuracy": acc}, os.path.join(args.out, "model.pt"))
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=2)
    print(f"[done] {args.norm}: test accuracy {acc:.4f} ({summary['wall_time_s']} s)", flush=True)
    return summary
