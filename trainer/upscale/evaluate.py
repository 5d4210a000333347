"""Evaluation of x4 upscalers with the usual super-resolution protocol (issue 33): PSNR and SSIM on the Y
channel of YCbCr (MATLAB ``rgb2ycbcr``), 4 px cropped at each border (:func:`trainer.metrics.sr_scores`).

Photos: the held-out test photos at their stored size (``--split test``; ``--short-side`` resizes first) or
the validation photos (``--split val``, short side 512 unless ``--short-side``), H and W cropped to multiples
of 16 (the HR); inputs made from each (H/4 x W/4 uint8):

* ``clean``: PIL bicubic x4 downscale (antialiased, as MATLAB ``imresize``);
* ``degraded``: that, then JPEG quality 50, then Gaussian noise sigma 5/255 (seeded per photo;
  :func:`trainer.upscale.degrade.eval_degraded`).

Rows: ``bicubic`` and ``lanczos`` (PIL, x4 up), ``nlm+lanczos`` (OpenCV ``fastNlMeansDenoisingColored`` with
h = hColor = ``--nlm-h`` (3, the best of 2, 3, 4, 7, 10 on 20 validation photos; template 7, search 21) on the input, then Lanczos; on clean
inputs it only blurs, so it is reported for the degraded inputs) and every ``label=checkpoint`` (EMA weights,
outputs rounded to uint8 as the service returns them). ``mean`` is the unweighted mean over photos.
"""
from __future__ import annotations

import json
import time
from argparse import Namespace

import numpy as np
import torch
from PIL import Image

from ..metrics import sr_scores
from .degrade import SCALE, bicubic_down, eval_degraded
from .model import build
from .pairs import bicubic_up, lanczos_up, photo_set, upscale_u8  # noqa: F401 (photo_set re-exported)


def load_upscaler(path: str) -> torch.nn.Module:
    """An :class:`~trainer.upscale.model.Upscaler` (eval mode, float32) from ``best.pt`` / ``final.pt`` /
    ``checkpoint.pt`` (EMA weights)."""
    ck = torch.load(path, map_location="cpu")
    m = build(ck["args"])
    m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck.get("ema", ck["model"]).items()})
    return m.eval()


def nlm_lanczos(lr: np.ndarray, h: float = 3.0) -> np.ndarray:
    """OpenCV non-local means (colour; h = hColor = ``h``, template 7, search 21) then Lanczos x4."""
    import cv2
    den = cv2.cvtColor(cv2.fastNlMeansDenoisingColored(cv2.cvtColor(lr, cv2.COLOR_RGB2BGR), None, h, h, 7, 21), cv2.COLOR_BGR2RGB)
    return lanczos_up(den)


def evaluate(models: dict[str, torch.nn.Module], images: dict[str, np.ndarray], nlm_h: float = 3.0) -> dict:
    """``{kind: {method: {"per_photo": {name: {psnr, ssim, ms}}, "mean": {...}}}}`` for kind clean / degraded."""
    out: dict = {}
    for kind in ("clean", "degraded"):
        methods = {"bicubic": bicubic_up, "lanczos": lanczos_up}
        if kind == "degraded":
            methods["nlm+lanczos"] = lambda lr: nlm_lanczos(lr, nlm_h)
        for label, m in models.items():
            methods[label] = lambda lr, m=m: upscale_u8(m, lr)
        res = {}
        for label, fn in methods.items():
            per = {}
            for i, (name, hr) in enumerate(images.items()):
                lr = bicubic_down(hr) if kind == "clean" else eval_degraded(hr, seed=i)
                t = time.perf_counter()
                sr = fn(lr)
                ms = (time.perf_counter() - t) * 1000
                p, s = sr_scores(sr, hr, SCALE)
                per[name] = {"psnr": round(p, 3), "ssim": round(s, 4), "ms": round(ms, 1)}
            res[label] = {"per_photo": per, "mean": {k: round(float(np.mean([v[k] for v in per.values()])), 4) for k in ("psnr", "ssim", "ms")}}
        out[kind] = res
    return out


def pass_ms(model: torch.nn.Module, side: int = 256, repeats: int = 5) -> float:
    """Median wall time in ms of one forward pass on a 1 x 3 x ``side`` x ``side`` LR input (-> 4 ``side``),
    after one warm-up pass, at the process's torch thread count (``--threads``)."""
    x = torch.zeros(1, 3, side, side)
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def figure(models: dict[str, torch.nn.Module], images: dict[str, np.ndarray], path: str, crop: int = 160) -> None:
    """PNG grid, one row per photo: a ``crop`` px HR-sized window (the photo's centre) of the degraded input
    upscaled nearest-neighbour | Lanczos | each model | the true photo."""
    from PIL import ImageDraw
    rows = []
    for i, (name, hr) in enumerate(images.items()):
        lr = eval_degraded(hr, seed=i)
        cols = [np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.NEAREST)), lanczos_up(lr)]
        cols += [upscale_u8(m, lr) for m in models.values()] + [hr]
        y, x = (hr.shape[0] - crop) // 2 // 4 * 4, (hr.shape[1] - crop) // 2 // 4 * 4
        rows.append([c[y:y + crop, x:x + crop] for c in cols])
    labels = ["input (nearest)", "Lanczos"] + list(models) + ["true"]
    pad, top = 4, 16
    canvas = Image.new("RGB", (len(labels) * (crop + pad) + pad, top + len(rows) * (crop + pad) + pad), "white")
    d = ImageDraw.Draw(canvas)
    for j, lab in enumerate(labels):
        d.text((pad + j * (crop + pad) + 2, 2), lab, fill="black")
    for i, row in enumerate(rows):
        for j, a in enumerate(row):
            canvas.paste(Image.fromarray(a), (pad + j * (crop + pad), top + i * (crop + pad)))
    canvas.save(path, optimize=True)


def main(args: Namespace) -> int:
    """The ``upscale evaluate`` verb: prints the table; ``--json`` writes it; ``--figure`` the grid."""
    torch.set_num_threads(args.threads)
    models = {}
    for spec in args.checkpoints:
        label, _, path = spec.partition("=")
        models[label] = load_upscaler(path)
    images = photo_set(args.split, args.short_side)
    if args.limit:
        images = dict(list(images.items())[: args.limit])
    res = evaluate(models, images, args.nlm_h)
    for kind, rows in res.items():
        base = rows["bicubic"]["mean"]["psnr"]
        print(f"{kind:<9}{'method':<16}{'Y-PSNR dB':>10}{'vs bicubic':>11}{'SSIM':>8}{'ms':>9}   ({args.split}, {len(images)} photos, x4, border 4)")
        for label, r in rows.items():
            m = r["mean"]
            print(f"{'':<9}{label:<16}{m['psnr']:>10.2f}{m['psnr'] - base:>+11.2f}{m['ssim']:>8.4f}{m['ms']:>9.0f}")
    sizes = {label: {"parameters": sum(p.numel() for p in m.parameters()),
                     **({f"ms_{args.bench_side}": round(pass_ms(m, args.bench_side), 1)} if args.bench_side else {})}
             for label, m in models.items()}
    for label, z in sizes.items():
        print(f"[model] {label}: {z['parameters']} parameters" + (f", {z[f'ms_{args.bench_side}']:.0f} ms per {args.bench_side}² pass "
              f"(PyTorch, {args.threads} thread(s), median of 5)" if args.bench_side else ""))
    if args.figure:
        figure(models, images, args.figure)
        print(f"[figure] {args.figure}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"split": args.split, "short_side": args.short_side, "photos": list(images), "scale": SCALE,
                       "protocol": "Y of YCbCr (BT.601 studio), 4 px border, inputs uint8", "results": res, "models": sizes}, f, indent=2)
    return 0
