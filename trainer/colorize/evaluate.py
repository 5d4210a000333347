"""Evaluation of colorizers on the held-out test photos (or the validation photos): does the output have
plausible colour, not only a good PSNR.

For each photo (``data.test_photos``, short side resized to 256 px, cropped to multiples of 4; with
``--split val`` the validation photos of ``--photos``' collections) the input is its BT.601 luma rounded
to uint8 (a real grayscale photo), the output is quantized to uint8 as the service returns it, and the
metrics are computed on RGB uint8 against the colour original:

* PSNR in dB, ``10 log10(255^2 / MSE)`` over all pixels and channels;
* SSIM (Wang et al. 2004): Gaussian window sigma 1.5, K1 0.01, K2 0.03, data range 255, mean over RGB;
* colourfulness ratio: Hasler & Suesstrunk (2003) M3 of the output divided by the original's (0 for a
  gray output, 1 = as colourful as the photo);
* AuC: area under the cumulative per-pixel ab-error curve, thresholds 0..150 (Zhang et al. 2016, 3.1);
* hue agreement (issue 29): share of the original's pixels with Lab chroma > 20 whose output pixel has chroma
  > 8 and a hue within 45 degrees (:func:`~trainer.colorize.hints_eval.hue_agreement`; photos without such
  pixels are left out of the mean).

Rows: every ``label=checkpoint`` given (one per ``--chroma-gain``, labelled ``label@gG``, when gains other
than 1 are given: the saturation calibration is chosen on ``--split val`` this way), every ``--outputs label=DIR`` (files ``DIR/<photo>.out.png`` made
elsewhere, e.g. by the real service: ``--dump DIR`` writes the gray inputs ``DIR/<photo>.png``, ``npx tsx
scripts/service-outputs.ts translate DIR [model]`` posts them to ``POST /v1/translate``), and ``gray_copy``
(output = the gray input on all channels). ``mean`` is the unweighted mean over the photos.
"""
from __future__ import annotations

import json
import os
from argparse import Namespace
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..color import luma_u8, to_signed, to_u8
from ..data import test_photos
from ..metrics import psnr_u8, ssim_u8
from .model import check_chroma_gain
from .quantize import ab_error_auc, colourfulness

Colorizer = Callable[[str, np.ndarray], np.ndarray]  # (photo name, H x W x 3 uint8 original) -> H x W x 3 uint8


def colorize(model: torch.nn.Module, rgb_u8: np.ndarray) -> np.ndarray:
    """Run a colorizer on the luma of ``rgb_u8`` (H x W x 3 uint8) -> H x W x 3 uint8."""
    x = torch.from_numpy(to_signed(luma_u8(rgb_u8)))[None, None]
    with torch.no_grad():
        y = model(x)[0].permute(1, 2, 0).numpy()
    return to_u8(y)


def gray_copy(rgb_u8: np.ndarray) -> np.ndarray:
    """The gray-copy baseline: the luma repeated on R, G and B (H x W x 3 uint8)."""
    return np.repeat(luma_u8(rgb_u8)[..., None], 3, axis=2)


def load_checkpoint(path: str, chroma_gain: float = 1.0) -> torch.nn.Module:
    """Translator from a trainer checkpoint (``best.pt``, ``final.pt`` or ``checkpoint.pt``), in eval mode,
    with the classify head's ``chroma_gain`` (see :class:`~trainer.colorize.model.Translator`; ignored by
    the L1 head). Raises ValueError for a gain outside [0, 2]."""
    from .train import build_model
    ck = torch.load(path, map_location="cpu")
    model = build_model(ck["args"])
    model.load_state_dict(ck["model"])
    model.chroma_gain = check_chroma_gain(chroma_gain)
    return model.eval()


def parse_gains(text: str) -> list[float]:
    """``"0.6,0.8,1"`` -> ``[0.6, 0.8, 1.0]`` (``--chroma-gain``). Raises ValueError for a non-number or a
    gain outside [0, 2]."""
    gains = [float(t) for t in text.split(",") if t.strip()]
    if not gains:
        raise ValueError(f"--chroma-gain: comma-separated numbers in [0, 2], got {text!r}")
    return [check_chroma_gain(g) for g in gains]


def outputs_fn(folder: str) -> Colorizer:
    """Outputs made elsewhere: ``folder/<photo>.out.png``. Raises FileNotFoundError when one is missing,
    ValueError when its size differs from the photo's."""
    def run(name: str, img: np.ndarray) -> np.ndarray:
        out = np.asarray(Image.open(os.path.join(folder, f"{name}.out.png")).convert("RGB"))
        if out.shape != img.shape:
            raise ValueError(f"outputs: {name}.out.png is {out.shape}, expected {img.shape}")
        return out
    return run


def photo_set(split: str, short_side: int = 256, collections: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """``{name: H x W x 3 uint8}``: the 8 test photos (``split="test"``) or the validation photos of
    ``collections`` (``"val"``), short side ``short_side``, H and W cropped to multiples of 4."""
    if split == "test":
        return test_photos.load_all(short_side)
    from ..data import photos
    out = {}
    for p in photos.split(photos.index(collections or photos.ALL_COLLECTIONS))[1]:
        a = photos.load_rgb(p.path, short_side)
        out[p.image_id] = a[: a.shape[0] // 4 * 4, : a.shape[1] // 4 * 4]
    return out


def score(pred: np.ndarray, true: np.ndarray) -> dict:
    """PSNR, SSIM, colourfulness ratio, AuC and hue agreement (None without clearly coloured pixels) of one
    output against its original (both H x W x 3 uint8)."""
    from .quantize import hue_agreement
    hue = hue_agreement(pred, true)
    return {"psnr": round(psnr_u8(true, pred), 3), "ssim": round(ssim_u8(true, pred), 4),
            "colourfulness": round(colourfulness(pred) / max(colourfulness(true), 1e-6), 4),
            "auc": round(ab_error_auc(pred, true), 4), "hue": None if np.isnan(hue) else round(hue, 4)}


def evaluate(fns: dict[str, Colorizer], images: dict[str, np.ndarray]) -> dict:
    """Metrics ``{label: {"per_photo": {name: score}, "mean": {...}}}`` for each colorizer and ``gray_copy``."""
    fns = {**fns, "gray_copy": lambda name, img: gray_copy(img)}
    out = {}
    for label, fn in fns.items():
        per = {name: score(fn(name, img), img) for name, img in images.items()}
        mean = {k: round(float(np.mean([v[k] for v in per.values() if v[k] is not None] or [np.nan])), 4) for k in ("psnr", "ssim", "colourfulness", "auc", "hue")}
        out[label] = {"per_photo": per, "mean": mean}
    return out


def figure(fns: dict[str, Colorizer], path: str, names=tuple(test_photos.NAMES), short_side: int = 128) -> None:
    """Save a PNG grid: one row per test photo; columns gray input, each colorizer's output, the original."""
    from PIL import ImageDraw
    rows = []
    for name in names:
        img = test_photos.load(name, short_side)
        rows.append([gray_copy(img)] + [fn(name, img) for fn in fns.values()] + [img])
    labels = ["gray input"] + list(fns) + ["original"]
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
    """The ``colorize evaluate`` verb (options: ``trainer/colorize/cli.py``); prints a table, returns 0."""
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        sizes = (args.short_side,) + ((args.figure_side,) if args.figure_side != args.short_side else ())
        for side in sizes:
            for name, img in photo_set("test", side).items():
                Image.fromarray(luma_u8(img)).save(os.path.join(args.dump, f"{name}@{side}.png"))
        print(f"[dump] gray test photos at short sides {sizes} -> {args.dump}", flush=True)
        return 0
    fns: dict[str, Colorizer] = {}
    gains = parse_gains(args.chroma_gain)
    for spec in args.checkpoints:
        label, _, path = spec.partition("=")
        for g in gains:
            m = load_checkpoint(path, g)
            row = label if gains == [1.0] else f"{label}@g{g:g}"
            fns[row] = lambda name, img, m=m: colorize(m, img)
    for spec in args.outputs:
        label, _, folder = spec.partition("=")
        fns[label] = (lambda name, img, f=folder: outputs_fn(f)(f"{name}@{min(img.shape[:2])}", img))
    images = photo_set(args.split, args.short_side)
    res = evaluate(fns, images)
    print(f"{'model':<18}{'PSNR dB':>9}{'SSIM':>8}{'colour':>8}{'AuC':>8}{'hue':>7}   ({args.split}, {len(images)} photos, "
          f"short side {args.short_side})")
    for label, r in res.items():
        m = r["mean"]
        print(f"{label:<18}{m['psnr']:>9.2f}{m['ssim']:>8.3f}{m['colourfulness']:>7.2f}x{m['auc']:>8.3f}{m['hue']:>7.3f}")
    if args.per_photo:
        for label, r in res.items():
            print(label + ": " + "  ".join(f"{n} {v['psnr']:.1f}/{v['colourfulness']:.2f}x" for n, v in r["per_photo"].items()))
    if args.figure:
        if args.split != "test":
            raise ValueError("--figure shows the test photos; use it with --split test")
        figure(fns, args.figure, short_side=args.figure_side)
        print(f"[figure] {args.figure}: columns gray input | {' | '.join(fns)} | original", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"split": args.split, "short_side": args.short_side, "results": res}, f, indent=2)
    return 0
