"""Evaluation of colorizers on the held-out test photos: PSNR and SSIM against the colour originals.

For each test photo (``data.test_photos``, short side resized to 256 px, cropped to multiples of 4)
the input is its BT.601 luma rounded to uint8 (a real grayscale photo), the output is quantized to
uint8 as the service returns it, and the metrics are computed on RGB uint8:

* PSNR in dB, ``10 log10(255^2 / MSE)`` over all pixels and channels;
* SSIM (Wang et al. 2004): Gaussian window sigma 1.5, K1 0.01, K2 0.03, data range 255, averaged
  over the three channels (``skimage.metrics.structural_similarity``).

Rows: every ``label=checkpoint`` given, and ``gray_copy`` (output = the gray input on all channels).
``mean`` is the unweighted mean over the eight photos.
"""
from __future__ import annotations

import json
from argparse import Namespace

import numpy as np
import torch

from ..color import luma_u8, to_signed, to_u8
from ..data import test_photos
from ..metrics import psnr_u8, ssim_u8


def colorize(model: torch.nn.Module, rgb_u8: np.ndarray) -> np.ndarray:
    """Run a colorizer on the luma of ``rgb_u8`` (H x W x 3 uint8) -> H x W x 3 uint8."""
    x = torch.from_numpy(to_signed(luma_u8(rgb_u8)))[None, None]
    with torch.no_grad():
        y = model(x)[0].permute(1, 2, 0).numpy()
    return to_u8(y)


def gray_copy(rgb_u8: np.ndarray) -> np.ndarray:
    """The gray-copy baseline: the luma repeated on R, G and B (H x W x 3 uint8)."""
    return np.repeat(luma_u8(rgb_u8)[..., None], 3, axis=2)


def load_checkpoint(path: str) -> torch.nn.Module:
    """Translator from a trainer checkpoint (``final.pt`` or ``checkpoint.pt``), in eval mode."""
    from .train import build_model
    ck = torch.load(path, map_location="cpu")
    model = build_model(ck["args"])
    model.load_state_dict(ck["model"])
    return model.eval()


def evaluate(models: dict[str, torch.nn.Module], short_side: int = 256) -> dict:
    """Metrics ``{label: {"per_photo": {name: {"psnr", "ssim"}}, "mean": {"psnr", "ssim"}}}`` incl. ``gray_copy``."""
    photos = test_photos.load_all(short_side)
    fns = {label: (lambda img, m=m: colorize(m, img)) for label, m in models.items()}
    fns["gray_copy"] = gray_copy
    out = {}
    for label, fn in fns.items():
        per = {}
        for name, img in photos.items():
            pred = fn(img)
            per[name] = {"psnr": round(psnr_u8(img, pred), 3), "ssim": round(ssim_u8(img, pred), 4)}
        mean = {k: round(float(np.mean([v[k] for v in per.values()])), 4) for k in ("psnr", "ssim")}
        out[label] = {"per_photo": per, "mean": mean}
    return out


def figure(models: dict[str, torch.nn.Module], path: str, names=("chelsea", "china", "coffee"), short_side: int = 192) -> None:
    """Save a PNG grid: one row per test photo; columns gray input, each model's output, the original."""
    from PIL import Image, ImageDraw
    rows = []
    for name in names:
        img = test_photos.load(name, short_side)
        rows.append([gray_copy(img)] + [colorize(m, img) for m in models.values()] + [img])
    labels = ["gray input"] + list(models) + ["original"]
    h = max(r[0].shape[0] for r in rows)
    w = max(r[0].shape[1] for r in rows)
    pad, top = 4, 18
    canvas = Image.new("RGB", (len(labels) * (w + pad) + pad, top + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(labels):
        draw.text((pad + j * (w + pad) + 2, 3), label, fill="black")
    for i, row in enumerate(rows):
        for j, a in enumerate(row):
            canvas.paste(Image.fromarray(a), (pad + j * (w + pad), top + i * (h + pad)))
    canvas.save(path, optimize=True)


def main(args: Namespace) -> int:
    """CLI: ``python3 -m trainer colorize evaluate label=final.pt ... [--json out.json]``; prints a table."""
    models = {}
    for spec in args.checkpoints:
        label, _, path = spec.partition("=")
        models[label] = load_checkpoint(path)
    res = evaluate(models, args.short_side)
    names = list(next(iter(res.values()))["per_photo"])
    print(f"{'model':<16}" + "".join(f"{n[:12]:>14}" for n in names) + f"{'mean':>14}")
    for label, r in res.items():
        cells = "".join(f"{r['per_photo'][n]['psnr']:>7.2f}/{r['per_photo'][n]['ssim']:.3f}" for n in names)
        print(f"{label:<16}{cells}{r['mean']['psnr']:>7.2f}/{r['mean']['ssim']:.3f}")
    print("(cells: PSNR dB / SSIM)")
    if args.figure:
        figure(models, args.figure)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"short_side": args.short_side, "results": res}, f, indent=2)
    return 0
