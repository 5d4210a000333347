"""Export a trained class-conditional generator into ``models/<name>/``: ONNX (opset 17, dynamic batch;
BN with standing statistics and AN in eval mode, so the graph has no random op), a parity fixture,
the manifest (class names, metrics, training record), the NOTICE and, optionally, a sample grid PNG.

* inputs ``z`` float32 B x 128 (N(0, 1) noise) and ``y`` float32 B x 10 (class weights: one-hot or any
  convex mix, which interpolates between classes in one pass, Wang et al. Fig. 8);
* output ``image`` float32 B x 1 x 28 x 28 in [-1, 1] (-1 = black background).
* ``fixture/``: batch 4 (three classes and a 50/50 mix) with seeded z, and PyTorch's output.

Usage: ``/usr/bin/python3 -m trainer generate export runs/fashion-an/final.pt --out-dir models/fashion-an
--metrics runs/gan-metrics.json --classifier-metrics runs/clf-metrics.json --command "..." --grid docs/fashion-grid.png``.
"""
from __future__ import annotations

from argparse import Namespace
import datetime as dt
import json
import os

import numpy as np
import torch
from PIL import Image

from ..data import photos
from . import data as fashion
from ..export import OPSET, export_onnx, git_commit, write_manifest
from ..manifest import scale_out
from .model import standing_stats
from .train import load_generator


def grid(g: torch.nn.Module, per_class: int = 10, seed: int = 0) -> np.ndarray:
    """uint8 (10*28) x (per_class*28) image: one row per class, the same z down each column."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(per_class, g.z_dim, generator=gen)
    rows = []
    with torch.no_grad():
        for c in range(10):
            y = torch.zeros(per_class, 10)
            y[:, c] = 1
            x = g(z, y)[:, 0]
            rows.append(torch.cat(list(x), 1))
    img = torch.cat(rows, 0)
    return ((img + 1) * 127.5).round().clamp(0, 255).byte().numpy()


def main(a: Namespace) -> int:
    """The ``generate export`` verb (options: ``trainer/generate/cli.py``); returns the exit status."""
    g = load_generator(a.checkpoint, an_sampling=getattr(a, "an_sampling", "grid"))
    ck = torch.load(a.checkpoint, map_location="cpu")
    standing_stats(g)
    os.makedirs(os.path.join(a.out_dir, "fixture"), exist_ok=True)
    onnx_path = os.path.join(a.out_dir, "model.onnx")
    export_onnx(g, onnx_path, (torch.zeros(2, g.z_dim), torch.eye(10)[:2]), ("z", "y"), ("image",),
                {"z": {0: "batch"}, "y": {0: "batch"}, "image": {0: "batch"}})

    z = torch.randn(4, g.z_dim, generator=torch.Generator().manual_seed(7))
    y = torch.zeros(4, 10)
    y[0, 0] = y[1, 5] = y[2, 9] = 1
    y[3, 1] = y[3, 7] = 0.5
    with torch.no_grad():
        out = g(z, y).numpy().astype(np.float32)
    fx = os.path.join(a.out_dir, "fixture")
    z.numpy().astype("<f4").tofile(os.path.join(fx, "z.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(fx, "y.f32"))
    out.astype("<f4").tofile(os.path.join(fx, "output.f32"))
    fixture = {"source": "z ~ N(0, I) from torch seed 7; y = one-hot 0, 5, 9 and a 50/50 mix of 1 and 7",
               "inputs": [{"name": "z", "dims": list(z.shape), "file": "z.f32"}, {"name": "y", "dims": list(y.shape), "file": "y.f32"}],
               "output": {"name": "image", "dims": list(out.shape), "file": "output.f32", "dtype": "float32-le"},
               "tolerance_max_abs": 1e-4, "torch_version": torch.__version__}
    json.dump(fixture, open(os.path.join(fx, "fixture.json"), "w"), indent=2)

    args = ck["args"]
    summary_path = os.path.join(os.path.dirname(a.checkpoint), "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    vec = lambda name, n, desc: {"name": name, "layout": "NC", "dtype": "float32", "channels": n, "range": [-1e9, 1e9] if name == "z" else [0.0, 1.0],
                                 "size_multiple": 1, "dynamic_dims": ["batch"], "description": desc}
    manifest = {
        "name": a.name, "version": a.version, "task": "generate",
        "description": "Class-conditional Fashion-MNIST generator: SN-GAN ResNet with conditional BN and Attentive "
                       "Normalization (Wang et al. 2020) in the third residual block" if args["an"] else
                       "Class-conditional Fashion-MNIST generator without AN (ablation)",
        "onnx": {"file": "model.onnx", "sha256": photos.sha256(onnx_path), "opset": OPSET, "bytes": os.path.getsize(onnx_path)},
        "inputs": [vec("z", g.z_dim, "noise, float32 N(0, 1); the service draws it from the request's seed"),
                   vec("y", 10, "class weights: one-hot, or a convex mix for categorical interpolation")],
        "outputs": [{"name": "image", "layout": "NCHW", "dtype": "float32", "channels": 1, "range": [-1.0, 1.0],
                     "size_multiple": 1, "dynamic_dims": ["batch"], "description": "28 x 28 gray, -1 = black"}],
        "classes": fashion.CLASSES,
        "image_size": [28, 28],
        "z_dim": g.z_dim,
        "architecture": {"ch": args["ch"], "an": args["an"], "entities": args["entities"],
                         "an_inference_sampling": getattr(a, "an_sampling", "grid") if args["an"] else None,
                         "g_parameters": sum(q.numel() for q in g.parameters())},
        "serving": {"default": a.default, "max_count": 64, "intra_op_threads": 1},  # 1: bit-exact batch independence
        "training": {"data": fashion.SOURCE | {"images": 60000},
                     "loss": f"hinge (eqs. 7-8) + {args['lambda_o']} x AN orthogonality (eq. 1)" + (
                         f" + {args['aux_weight']:g} x auxiliary class cross-entropy (AC-GAN head of D, trained on real "
                         "images; G pushed to the requested class)" if args.get("aux_weight") else ""),
                     "aux_weight": args.get("aux_weight", 0.0),
                     "optimizer": f"Adam G {args['lr_g']} / D {args['lr_d']}, betas (0, 0.999), n_dis {args['n_dis']}",
                     "command": a.command, "steps": summary.get("steps", ck.get("step")), "scale_out": scale_out(args), "batch": args["batch"],
                     "seed": args["seed"], "ema": args["ema"], "device": args["device"], "threads": args["threads"],
                     "wall_time_s": summary.get("wall_time_s"), "bn_statistics": "standing statistics, 64 x 100 samples",
                     "git_commit": git_commit(), "torch": torch.__version__,
                     "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
        "metrics": {**(json.load(open(a.metrics)) if a.metrics else {}),
                    **({"classifiers": json.load(open(a.classifier_metrics))} if a.classifier_metrics else {})},
        "fixture": {"dir": "fixture", **fixture},
        "license": "Model weights: MIT (derived from Fashion-MNIST, MIT, Zalando SE). Code: MIT.",
    }
    write_manifest(a.out_dir, manifest,
                   f"normgen {a.name}: a class-conditional generator trained by the normgen project on Fashion-MNIST.\n\n"
                   "Fashion-MNIST: Copyright (c) 2017 Zalando SE, MIT licence (Xiao, Rasul and Vollgraf 2017,\n"
                   "https://github.com/zalandoresearch/fashion-mnist), from Debian's dataset-fashion-mnist package.\n"
                   "The images are not redistributed here; the model is derived from them.\n")
    if a.grid:
        Image.fromarray(grid(g)).resize((280 * 2, 280 * 2), Image.NEAREST).save(a.grid)
    print(f"[export] {onnx_path} ({manifest['onnx']['bytes']} bytes), fixture, manifest written", flush=True)
    return 0

