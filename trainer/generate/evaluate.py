"""Evaluation of class-conditional generators (issue 4 section 4), in the feature space of the trained
Fashion-MNIST evaluator (``generate train-evaluator``): FID (Heusel et al. 2017) on its GAP features, not
Inception's.

For each generator: ``standing_stats`` on its EMA weights, then ``samples`` images (equal count per
class, z ~ N(0, I) from ``seed``) against the 10,000 test images:

* FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) over all samples;
* intra-FID: the mean over classes of the FID between one class's samples and that class's test images;
* accuracy: the evaluator's top-1 agreement with the requested class;
* IS-style score: exp(E_x KL(p(y|x) || p(y))) with the evaluator's softmax (max 10).

Reference rows: the training set against the test set (the floor these numbers can reach with this
feature space) are printed too.

Usage: ``/usr/bin/python3 -m trainer generate evaluate an=runs/fashion-an/final.pt no_an=runs/fashion-noan/final.pt
--evaluator runs/clf-an/model.pt --json runs/gan-metrics.json``.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from . import data as fashion
from .model import standing_stats
from .train_evaluator import load_classifier
from .train import load_generator


def fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features f1 (N1 x D) and f2 (N2 x D), float64."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)  # (no disp=: removed in SciPy 1.16; old versions return the matrix alone without it)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@torch.no_grad()
def embed(clf: torch.nn.Module, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(features N x D float64, softmax probabilities N x 10) of images x N x 1 x 28 x 28 in [-1, 1]."""
    feats, probs = [], []
    for i in range(0, len(x), batch):
        f = clf.features(x[i:i + batch])
        feats.append(f.double().numpy())
        probs.append(torch.softmax(clf.fc(f), 1).double().numpy())
    return np.concatenate(feats), np.concatenate(probs)


def is_score(p: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) of class probabilities p (N x K)."""
    py = p.mean(0, keepdims=True)
    return float(np.exp((p * (np.log(p + 1e-12) - np.log(py + 1e-12))).sum(1).mean()))


@torch.no_grad()
def sample(g: torch.nn.Module, labels: np.ndarray, seed: int, batch: int = 500) -> torch.Tensor:
    """Images N x 1 x 28 x 28 for the class labels (N,), z from a torch Generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(labels), batch):
        y = F.one_hot(torch.from_numpy(labels[i:i + batch]), 10).float()
        z = torch.randn(len(y), g.z_dim, generator=gen)
        out.append(g(z, y))
    return torch.cat(out)


def metrics(feats: np.ndarray, probs: np.ndarray, labels: np.ndarray, rf: np.ndarray, ry: np.ndarray) -> dict:
    """The metric set of a sample (features N x D, softmax probabilities N x 10, requested labels N) against real
    features/labels: FID, intra-FID per class and mean, accuracy (evaluator's top-1 = requested class) overall
    and per class (and the lowest), IS-style score."""
    intra = {fashion.CLASSES[c]: round(fid(feats[labels == c], rf[ry == c]), 3) for c in range(10)}
    hit = probs.argmax(1) == labels
    per_class = {fashion.CLASSES[c]: round(float(hit[labels == c].mean()), 4) for c in range(10)}
    return {"fid": round(fid(feats, rf), 3), "intra_fid_mean": round(float(np.mean(list(intra.values()))), 3),
            "accuracy": round(float(hit.mean()), 4), "min_class_accuracy": min(per_class.values()),
            "is_style": round(is_score(probs), 3), "intra_fid": intra, "class_accuracy": per_class}


def load_images(folder: str) -> tuple[torch.Tensor, np.ndarray]:
    """Samples saved by the service (``scripts/service-outputs.ts generate DIR``): every ``<class>_<i>.png``
    in ``folder`` (28 x 28 gray, 8-bit) as (float32 N x 1 x 28 x 28 in [-1, 1], requested class int64 N),
    sorted by (class, i).

    Raises:
        ValueError: no such PNG in ``folder``, or one that is not 28 x 28.
    """
    import os
    import re
    from PIL import Image
    names = [(int(m[1]), int(m[2]), f) for f in os.listdir(folder) if (m := re.fullmatch(r"(\d+)_(\d+)\.png", f))]
    if not names:
        raise ValueError(f"{folder}: no <class>_<i>.png samples")
    xs, ys = [], []
    for c, _, f in sorted(names):
        a = np.asarray(Image.open(os.path.join(folder, f)).convert("L"))
        if a.shape != (28, 28):
            raise ValueError(f"{folder}/{f}: {a.shape[1]}x{a.shape[0]}, expected 28x28")
        xs.append(a); ys.append(c)
    return torch.from_numpy(fashion.to_signed(np.stack(xs))), np.array(ys, dtype=np.int64)


def main(args) -> int:
    """Evaluate ``args.generators`` (label=final.pt) with ``args.evaluator``; prints the table and writes
    ``args.json`` (FID / intra-FID unitless, accuracy in [0, 1], IS-style in [1, 10]). Returns 0."""
    torch.set_num_threads(args.threads)
    clf = load_classifier(args.evaluator)
    xte, yte = fashion.load("test")
    xtr, ytr = fashion.load("train")
    rf, rp = embed(clf, torch.from_numpy(fashion.to_signed(xte)))
    rng = np.random.default_rng(args.seed)
    sub = rng.choice(len(xtr), args.samples, replace=False)
    tf, tp = embed(clf, torch.from_numpy(fashion.to_signed(xtr[sub])))
    results = {"evaluator": args.evaluator, "samples": args.samples, "seed": args.seed, "feature_dim": int(rf.shape[1]),
               "reference_train_vs_test": metrics(tf, tp, ytr[sub], rf, yte),
               "test_set_is_style": round(is_score(rp), 3), "generators": {}}
    labels = np.repeat(np.arange(10), args.samples // 10)
    for spec in getattr(args, "images", None) or []:
        label, folder = spec.split("=", 1)
        x, y = load_images(folder)
        feats, probs = embed(clf, x)
        results["generators"][label] = {"images": folder, "count": len(y), **metrics(feats, probs, y, rf, yte)}
        print(f"[eval] {label} ({len(y)} images): {json.dumps({k: v for k, v in results['generators'][label].items() if k not in ('intra_fid',)})}", flush=True)
    for spec in args.generators:
        label, path = spec.split("=", 1)
        g = load_generator(path, an_sampling=getattr(args, "an_sampling", "grid"))
        standing_stats(g)
        feats, probs = embed(clf, sample(g, labels, args.seed))
        results["generators"][label] = {"checkpoint": path, **metrics(feats, probs, labels, rf, yte)}
        print(f"[eval] {label}: {json.dumps({k: v for k, v in results['generators'][label].items() if k not in ('intra_fid', 'class_accuracy')})}", flush=True)
    ref = results["reference_train_vs_test"]
    print(f"\n| | FID | intra-FID | accuracy | IS-style |\n|---|---|---|---|---|")
    for label, m in results["generators"].items():
        print(f"| {label} | {m['fid']:.2f} | {m['intra_fid_mean']:.2f} | {m['accuracy']:.3f} | {m['is_style']:.2f} |")
    print(f"| real train images (reference) | {ref['fid']:.2f} | {ref['intra_fid_mean']:.2f} | {ref['accuracy']:.3f} | {ref['is_style']:.2f} |")
    if args.json:
        json.dump(results, open(args.json, "w"), indent=2)
    return 0


def curve_main(args) -> int:
    """The ``generate curve`` verb: FID, accuracy and the lowest per-class accuracy of every EMA snapshot
    (``RUN/snapshots/ema_NNNNNN.pt``, from ``generate train --snapshot-every``) of each ``label=RUN``, with
    ``args.samples`` samples (equal per class, seed ``args.seed``) in ``args.evaluator``'s features against
    the test set. Points already in ``args.json`` (same label and step) are kept, not recomputed, so the
    committed curve grows across sessions. Writes ``args.json`` and, with ``args.plot``, a PNG (FID and
    accuracy vs step, one line per label; the train-vs-test floor dashed). Returns 0."""
    import glob
    import os
    torch.set_num_threads(args.threads)
    clf = load_classifier(args.evaluator)
    xte, yte = fashion.load("test")
    rf, _ = embed(clf, torch.from_numpy(fashion.to_signed(xte)))
    old = json.load(open(args.json)) if args.json and os.path.exists(args.json) else {}
    if old and old.get("evaluator_sha256") not in (None, _sha(args.evaluator)):
        raise ValueError(f"{args.json} was measured with another evaluator; start a new curve file")
    points = {(p["label"], p["step"]): p for p in old.get("points", [])}
    if "floor" not in old:
        xtr, ytr = fashion.load("train")
        sub = np.random.default_rng(args.seed).choice(len(xtr), args.samples, replace=False)
        tf, tp = embed(clf, torch.from_numpy(fashion.to_signed(xtr[sub])))
        m = metrics(tf, tp, ytr[sub], rf, yte)
        old["floor"] = {k: m[k] for k in ("fid", "accuracy", "min_class_accuracy")}
    labels = np.repeat(np.arange(10), args.samples // 10)
    for spec in args.runs:
        label, run = spec.split("=", 1)
        for path in sorted(glob.glob(os.path.join(run, "snapshots", "ema_*.pt"))):
            step = int(os.path.basename(path)[4:-3])
            if (label, step) in points:
                continue
            g = load_generator(path, an_sampling=getattr(args, "an_sampling", "grid"))
            standing_stats(g)
            feats, probs = embed(clf, sample(g, labels, args.seed))
            m = metrics(feats, probs, labels, rf, yte)
            points[(label, step)] = {"label": label, "step": step, "an_sampling": args.an_sampling if g.an_layers() else None, **{k: m[k] for k in ("fid", "accuracy", "min_class_accuracy", "is_style")}}
            print(f"[curve] {label} step {step}: FID {m['fid']:.2f} accuracy {m['accuracy']:.3f} "
                  f"(lowest class {m['min_class_accuracy']:.3f})", flush=True)
    out = {"evaluator": args.evaluator, "evaluator_sha256": _sha(args.evaluator), "samples": args.samples, "seed": args.seed,
           "floor": old["floor"], "points": sorted(points.values(), key=lambda p: (p["label"], p["step"]))}
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)
    if args.plot:
        plot_curve(out, args.plot)
    return 0


def _sha(path: str) -> str:
    from ..data.photos import sha256
    return sha256(path)


def plot_curve(curve: dict, path: str) -> None:
    """A small PNG: FID (left) and accuracy with the lowest class's (right) against the training step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    for label in sorted({p["label"] for p in curve["points"]}):
        pts = [p for p in curve["points"] if p["label"] == label]
        steps = [p["step"] for p in pts]
        a.plot(steps, [p["fid"] for p in pts], marker=".", label=label)
        line, = b.plot(steps, [p["accuracy"] for p in pts], marker=".", label=f"{label} mean")
        b.plot(steps, [p["min_class_accuracy"] for p in pts], ls=":", color=line.get_color(), label=f"{label} lowest class")
    a.axhline(curve["floor"]["fid"], ls="--", color="gray", label="train vs test")
    b.axhline(curve["floor"]["accuracy"], ls="--", color="gray", label="real images")
    a.set(xlabel="step", ylabel="FID (evaluator features)", yscale="log")
    b.set(xlabel="step", ylabel="accuracy", ylim=(0, 1))
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
