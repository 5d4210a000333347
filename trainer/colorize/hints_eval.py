"""Evaluation of colour hints (issue 29): our hinted colorizer against Levin, Lischinski & Weiss 2004 with the
same hints, on whole photos.

Per photo (test or validation split, short side ``--short-side``, H and W cropped to multiples of 16) and per
hint count n in ``--hints``: hints = :func:`~trainer.colorize.hints.fixed_hints` (n seeded 5 x 5 patches of
the true mean ab, seed = 1000 + photo index, the same for every method). Outputs are uint8 RGB whose BT.601
luma is the input's. Metrics on uint8 RGB against the original:

* PSNR (dB), SSIM, colourfulness ratio (as ``colorize evaluate``);
* **hue agreement** (the issue's definition): of the original's pixels with CIE Lab chroma > 20, the share
  whose output has chroma > 8 and a hue within 45 degrees of the original's;
* time per photo (median, ms) of each method.

Levin et al. 2004, "Colorization using Optimization" (SIGGRAPH), eq. 1-2: every pixel's chroma is the
weighted mean of its 3 x 3 neighbours', with weights ``exp(-(Y_r - Y_s)^2 / (2 sigma_r^2))`` normalised per
pixel (sigma_r the variance of Y in the window, floored), the hinted pixels fixed; one sparse linear solve per
chroma channel (SciPy's SuperLU). We solve for CIE a* and b* (the hints' space) and decode like our model
(L* from the luma, Lab -> sRGB, chroma kept with the input luma).
"""
from __future__ import annotations

import json
import time
from argparse import Namespace

import numpy as np
import torch

from ..color import ab_onto_luma, luma_u8, rgb_to_chroma, to_signed, to_u8, ycbcr_to_rgb_in_gamut
from ..export import finite_json
from ..metrics import psnr_u8, ssim_u8
from .hints import AB_SCALE, fixed_hints, load_hinted, true_ab
from .quantize import colourfulness, hue_agreement, lab_ab  # noqa: F401 (re-exported)


SECTORS = (-180, -135, -90, -45, 0, 45, 90, 135, 180)


def hue_sectors(pairs: list[tuple[np.ndarray, np.ndarray]], min_true: float = 20.0, min_pred: float = 8.0) -> dict:
    """Where the colour goes (issue 29, item 3: the sepia cast): over ``(pred, true)`` uint8 image pairs, the share
    of the clearly coloured true pixels (Lab chroma > ``min_true``) in each 45-degree Lab hue sector, and the
    share of the outputs' coloured pixels (chroma > ``min_pred``) in each sector, with the share of outputs
    that are coloured at all. Sectors: [-180, -135) ... [135, 180) degrees (a*b* angle)."""
    t_hist = np.zeros(len(SECTORS) - 1)
    p_hist = np.zeros(len(SECTORS) - 1)
    coloured = total = 0
    for pred, true in pairs:
        at, ap = lab_ab(true), lab_ab(pred)
        sel = np.hypot(at[0], at[1]) > min_true
        ht = np.degrees(np.arctan2(at[1], at[0]))[sel]
        cp = np.hypot(ap[0], ap[1])[sel]
        hp = np.degrees(np.arctan2(ap[1], ap[0]))[sel][cp > min_pred]
        t_hist += np.histogram(ht, SECTORS)[0]
        p_hist += np.histogram(hp, SECTORS)[0]
        coloured += int((cp > min_pred).sum())
        total += int(sel.sum())
    names = [f"{a}..{b}" for a, b in zip(SECTORS[:-1], SECTORS[1:])]
    return {"sectors_deg": names, "truth": [round(v, 4) for v in t_hist / max(t_hist.sum(), 1)],
            "output": [round(v, 4) for v in p_hist / max(p_hist.sum(), 1)], "output_coloured_share": round(coloured / max(total, 1), 4)}


def decode_ab(gray_u8: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Luma (H x W uint8) + CIE ab (2 x H x W) -> H x W x 3 uint8, decoded like the model (luma kept)."""
    out = ab_onto_luma(torch.from_numpy(to_signed(gray_u8))[None, None], torch.from_numpy(ab)[None].float())
    return to_u8(out[0].permute(1, 2, 0).numpy())


def levin(gray_u8: np.ndarray, hints: np.ndarray) -> np.ndarray:
    """Levin et al. 2004 colorization: gray H x W uint8, hints 3 x H x W (a/110, b/110, mask) -> ab 2 x H x W
    (CIE units); with no hint the result is 0 (gray)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu
    h, w = gray_u8.shape
    n = h * w
    mask = hints[2] > 0.5
    if not mask.any():
        return np.zeros((2, h, w), np.float32)
    y = gray_u8.astype(np.float64) / 255.0
    idx = np.arange(n).reshape(h, w)
    rows, cols, vals = [], [], []
    pad = np.pad(y, 1, mode="edge")
    ipad = np.pad(idx, 1, mode="edge")
    neigh_y = np.stack([pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)])
    neigh_i = np.stack([ipad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)])
    window = np.concatenate([neigh_y, y[None]], 0)
    var = np.maximum(window.var(0) * 0.6, 2e-6)
    wgt = np.exp(-((neigh_y - y[None]) ** 2) / (2 * var[None]))
    wgt /= wgt.sum(0, keepdims=True)
    # rows of free pixels: U_r - sum_s w_rs U_s = 0; hinted pixels: U_r = hint
    free = ~mask.ravel()
    r_idx = np.repeat(idx.ravel()[None], 8, 0)
    keep = np.repeat(free[None], 8, 0)  # at the border a padded neighbour is the pixel itself: summed into the diagonal
    rows.append(r_idx[keep]); cols.append(neigh_i.reshape(8, -1)[keep]); vals.append(-wgt.reshape(8, -1)[keep])
    rows.append(idx.ravel()); cols.append(idx.ravel()); vals.append(np.ones(n))
    a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    lu = splu(a)
    out = np.zeros((2, h, w), np.float32)
    for c in range(2):
        b = np.where(mask.ravel(), hints[c].ravel() * AB_SCALE, 0.0)
        out[c] = lu.solve(b).reshape(h, w)
    return out


def photos_for(split: str, short_side: int) -> dict[str, np.ndarray]:
    """The test or validation photos, cropped to multiples of 16. ``test``: ``colorize evaluate``'s 8 test photos;
    ``val``: its validation photos plus the jigzo photographs (:func:`trainer.data.photos.jigzo_photos`: bike,
    helicopter, train, horse, sky, foliage... what users send; in no training set), short side ``short_side``
    (Lanczos)."""
    from PIL import Image
    from ..data import photos
    from .evaluate import photo_set
    images = photo_set(split, short_side)
    if split == "val":
        for k, v in photos.jigzo_photos().items():
            f = short_side / min(v.shape[:2])
            images[k] = np.asarray(Image.fromarray(v).resize((round(v.shape[1] * f), round(v.shape[0] * f)), Image.LANCZOS))
    return {k: v[: v.shape[0] // 16 * 16, : v.shape[1] // 16 * 16] for k, v in images.items()}


def colorize_at(model, gray_u8: np.ndarray, hints: torch.Tensor, work_side: int = 0) -> np.ndarray:
    """The hinted model's H x W x 3 uint8 output for an H x W uint8 gray photo and its 1 x 3 x H x W hints, run
    as the service runs a model with ``serving.working_max_side = work_side`` (0: at full size). A photo whose
    longer side exceeds ``work_side`` is colorized at that size (gray: Lanczos-3; hints: their a*b* averaged
    over the hinted area, weighted by the mask, any hinted area a hint) and its chroma (BT.601 Cb, Cr) is
    upsampled bilinearly onto the full-resolution luma, kept exactly (``src/imaging/upsample.ts``)."""
    import torch.nn.functional as F
    from PIL import Image
    h, w = gray_u8.shape
    x = torch.from_numpy(to_signed(gray_u8))[None, None]
    if not work_side or max(h, w) <= work_side:
        with torch.no_grad():
            return to_u8(model(x, hints)[0].permute(1, 2, 0).numpy())
    k = work_side / max(h, w)
    sh, sw = max(1, round(h * k)), max(1, round(w * k))
    ph, pw = -(-sh // 16) * 16, -(-sw // 16) * 16          # the model's size multiple; edge-padded
    small = np.asarray(Image.fromarray(gray_u8).resize((sw, sh), Image.LANCZOS))
    small = np.pad(small, ((0, ph - sh), (0, pw - sw)), mode="edge")
    mask = hints[:, 2:3]
    m_s = F.interpolate(mask, size=(sh, sw), mode="area")
    ab_s = F.interpolate(hints[:, :2] * mask, size=(sh, sw), mode="area") / m_s.clamp_min(1e-8)
    hint_s = torch.cat([ab_s * (m_s > 0), (m_s > 0).float()], 1)
    hint_s = F.pad(hint_s, (0, pw - sw, 0, ph - sh))
    with torch.no_grad():
        rgb = model(torch.from_numpy(to_signed(small))[None, None], hint_s)[:, :, :sh, :sw]
        chroma = F.interpolate(rgb_to_chroma(rgb), size=(h, w), mode="bilinear", align_corners=False)
        out = ycbcr_to_rgb_in_gamut(x, chroma)
    return to_u8(out[0].permute(1, 2, 0).numpy())


def run(model, images: dict[str, np.ndarray], counts: list[int], with_levin: bool, work_side: int = 0,
        pipeline=None) -> dict:
    """Metrics ``{method@n: {"mean": {...}, "per_photo": {...}}}`` for ``ours`` (the network alone), ``levin``
    (with ``with_levin``) and ``pipeline`` (a :class:`~trainer.colorize.hybrid.HybridColorizer`, when given) at
    each hint count, plus ``gray_copy``; ``ms`` = median time per photo (PyTorch, this process's threads).
    ``work_side``: see :func:`colorize_at`."""
    res: dict[str, dict] = {}

    def add(label, name, pred, true, ms):
        r = res.setdefault(label, {"per_photo": {}, "times": []})
        r["per_photo"][name] = {"psnr": round(psnr_u8(true, pred), 3), "ssim": round(ssim_u8(true, pred), 4),
                                "colourfulness": round(colourfulness(pred) / max(colourfulness(true), 1e-6), 4),
                                "hue": round(hue_agreement(pred, true), 4)}
        r["times"].append(ms)

    for i, (name, img) in enumerate(images.items()):
        gray = luma_u8(img)
        add("gray_copy", name, np.repeat(gray[..., None], 3, 2), img, 0.0)
        ab_true = torch.from_numpy(lab_ab(img))[None]
        for n in counts:
            hints = fixed_hints(ab_true, n, seed=1000 + i) if n > 0 else torch.zeros(1, 3, *gray.shape)
            t0 = time.perf_counter()
            out = colorize_at(model, gray, hints, work_side)
            add(f"ours@{n}", name, out, img, (time.perf_counter() - t0) * 1000)
            if pipeline is not None:
                t0 = time.perf_counter()
                out = colorize_at(pipeline, gray, hints, work_side)
                add(f"pipeline@{n}", name, out, img, (time.perf_counter() - t0) * 1000)
            if with_levin and n > 0:
                t0 = time.perf_counter()
                ab = levin(gray, hints[0].numpy())
                add(f"levin@{n}", name, decode_ab(gray, ab), img, (time.perf_counter() - t0) * 1000)
    for r in res.values():
        pp = r["per_photo"].values()
        r["mean"] = {k: round(float(np.nanmean([v[k] for v in pp])), 4) for k in ("psnr", "ssim", "colourfulness", "hue")}
        r["mean"]["ms"] = round(float(np.median(r.pop("times"))), 1)
    return res


def figure(model, images: dict[str, np.ndarray], path: str, n: int = 10, work_side: int = 0) -> None:
    """A PNG grid, one row per photo: gray | Levin 2004 with n hints | ``model`` with n hints | ``model`` without
    hints | the original; the hint patches are outlined in white on the gray column (the issue's figure)."""
    from PIL import Image, ImageDraw
    rows = []
    for i, (name, img) in enumerate(images.items()):
        gray = luma_u8(img)
        hints = fixed_hints(torch.from_numpy(lab_ab(img))[None], n, seed=1000 + i)
        ours = colorize_at(model, gray, hints, work_side)
        auto = colorize_at(model, gray, torch.zeros_like(hints), work_side)
        lev = decode_ab(gray, levin(gray, hints[0].numpy()))
        g = Image.fromarray(np.repeat(gray[..., None], 3, 2))
        d = ImageDraw.Draw(g)
        ys, xs = np.nonzero(hints[0, 2].numpy())
        for y, x_ in zip(ys[::25], xs[::25]):
            d.rectangle([x_ - 3, y - 3, x_ + 3, y + 3], outline=(255, 255, 255))
        rows.append([np.asarray(g), lev, ours, auto, img])
    h = max(r[0].shape[0] for r in rows)
    w = max(r[0].shape[1] for r in rows)
    labels = ["gray + hints", f"Levin 2004, {n} hints", f"ours, {n} hints", "ours, no hints", "original"]
    canvas = Image.new("RGB", (5 * (w + 4) + 4, 18 + len(rows) * (h + 4) + 4), "white")
    d = ImageDraw.Draw(canvas)
    for j, label in enumerate(labels):
        d.text((4 + j * (w + 4) + 2, 3), label, fill="black")
    for i, row in enumerate(rows):
        for j, a in enumerate(row):
            canvas.paste(Image.fromarray(a), (4 + j * (w + 4), 18 + i * (h + 4)))
    canvas.convert("RGB").save(path, **({"quality": 85} if path.lower().endswith((".jpg", ".jpeg")) else {"optimize": True}))


def main(args: Namespace) -> int:
    """The ``colorize evaluate-hints`` verb: prints one row per method and hint count; ``--json`` writes them."""
    torch.set_num_threads(args.threads)
    model, _ = load_hinted(args.checkpoint)
    pipeline = None
    if args.pipeline:
        from .hybrid import HybridColorizer
        pipeline = HybridColorizer(model).eval()
    counts = [int(c) for c in args.hints.split(",")]
    images = photos_for(args.split, args.short_side)
    if args.limit:
        images = dict(list(images.items())[: args.limit])
    if args.figure:
        figure(pipeline or model, images, args.figure, work_side=args.work_side)
        print(f"[figure] {args.figure}", flush=True)
        if args.figure_only:
            return 0
    res = run(model, images, counts, args.levin, args.work_side, pipeline)
    if args.sectors:
        pairs = []
        for name, img in images.items():
            gray = luma_u8(img)
            pairs.append((colorize_at(model, gray, torch.zeros(1, 3, *gray.shape), args.work_side), img))
        sec = hue_sectors(pairs)
        res["hue_sectors_no_hints"] = sec
        print("hue sector (Lab deg) " + "  ".join(f"{n:>10}" for n in sec["sectors_deg"]))
        print("truth               " + "  ".join(f"{v:>10.3f}" for v in sec["truth"]))
        print("output (no hints)   " + "  ".join(f"{v:>10.3f}" for v in sec["output"]) + f"   (coloured: {sec['output_coloured_share']:.2f})")
    gray = res["gray_copy"]["mean"]["psnr"]
    print(f"{'method':<14}{'PSNR dB':>9}{'gain':>7}{'SSIM':>8}{'colour':>8}{'hue':>7}{'ms':>9}   ({args.split}, {len(images)} photos, short side {args.short_side})")
    for label, r in res.items():
        if "mean" not in r:
            continue
        m = r["mean"]
        print(f"{label:<14}{m['psnr']:>9.2f}{m['psnr'] - gray:>+7.2f}{m['ssim']:>8.3f}{m['colourfulness']:>7.2f}x{m['hue']:>7.3f}{m['ms']:>9.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(finite_json({"split": args.split, "short_side": args.short_side, "hints": counts, "results": res}), f,
                      indent=2, allow_nan=False)
    return 0


def tune_main(args: Namespace) -> int:
    """The ``colorize tune-hybrid`` verb: the hybrid's blend constants (``unsure_reach`` x ``unsure_fill`` x
    ``unsure_spread``, the rest of :class:`~trainer.colorize.hybrid.SolveConfig` at its defaults) on the
    validation photos at each hint count. The network and the solve run once per photo and count (their outputs
    do not depend on the blend); each combination then re-blends them with :func:`~trainer.colorize.hybrid.blend`.
    Prints PSNR gain over the gray copy and hue agreement per combination and count; ``--json`` writes them with
    the per-photo values."""
    from dataclasses import replace
    from .hybrid import AB_LIMIT, HybridColorizer, blend
    torch.set_num_threads(args.threads)
    model, _ = load_hinted(args.checkpoint)
    hyb = HybridColorizer(model).eval()
    cfg = hyb.cfg
    counts = [int(c) for c in args.hints.split(",")]
    reaches = [float(v) for v in args.unsure_reach.split(",")]
    fills = [float(v) for v in args.unsure_fill.split(",")]
    spreads = [float(v) for v in args.unsure_spread.split(",")]
    images = photos_for(args.split, args.short_side)
    if args.limit:
        images = dict(list(images.items())[: args.limit])
    combos = [(u, f, d) for u in reaches for f in fills for d in spreads]
    key = lambda u, f, d: f"reach={u} fill={f} spread={d}"
    res = {key(*c): {n: {"psnr": [], "hue": []} for n in counts} for c in combos}
    gray_psnr = []
    t0 = time.perf_counter()
    for i, (name, img) in enumerate(images.items()):
        gray = luma_u8(img)
        gray_psnr.append(psnr_u8(img, np.repeat(gray[..., None], 3, 2)))
        x = torch.from_numpy(to_signed(gray))[None, None]
        ab_true = torch.from_numpy(lab_ab(img))[None]
        for n in counts:
            hints = fixed_hints(ab_true, n, seed=1000 + i) if n > 0 else torch.zeros(1, 3, *gray.shape)
            with torch.no_grad():
                colour, reach = hyb.propagate(x, hints)
                prior, conf = hyb.prior(x, hints, reach)
            for u, f, d in combos:
                ab = blend(colour, reach, prior, conf, hints, replace(cfg, unsure_reach=u, unsure_fill=f, unsure_spread=d))
                out = to_u8(ab_onto_luma(x, ab)[0].permute(1, 2, 0).numpy())
                r = res[key(u, f, d)][n]
                r["psnr"].append(round(psnr_u8(img, out), 3))
                r["hue"].append(round(hue_agreement(out, img), 4))
        print(f"[tune] {i + 1}/{len(images)} photos, {time.perf_counter() - t0:.0f} s", flush=True)
    g = float(np.mean(gray_psnr))
    print(f"{'blend':<36}" + "".join(f"{n:>9} hints  " for n in counts) + f"  (PSNR gain dB, hue; {args.split}, {len(images)} photos)")
    for label, per in res.items():
        print(f"{label:<36}" + "".join(f"{np.mean(per[n]['psnr']) - g:>+8.2f} {np.nanmean(per[n]['hue']):.3f} " for n in counts))
    if args.json:
        out = {"split": args.split, "short_side": args.short_side, "hints": counts, "gray_psnr_mean": round(g, 4),
               "photos": list(images), "ab_limit": AB_LIMIT, "results": {
                   k: {str(n): {"psnr_gain": round(float(np.mean(v[n]["psnr"])) - g, 4), "hue": round(float(np.nanmean(v[n]["hue"])), 4),
                                "per_photo_psnr": v[n]["psnr"], "per_photo_hue": v[n]["hue"]} for n in counts} for k, v in res.items()}}
        with open(args.json, "w") as fh:
            json.dump(finite_json(out), fh, indent=1, allow_nan=False)
    return 0
