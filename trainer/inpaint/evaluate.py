"""Inpainting evaluation on the held-out test photos with one fixed, seeded, committed set of masks
(``trainer/inpaint/eval_masks/<photo>.png``, white = hole, made by ``--make-masks`` with seed 2024), after
Wang et al. 2020, Table 3: PSNR (dB), SSIM (Gaussian sigma 1.5, RGB mean) and MAE (mean absolute error
on [0, 1], all pixels), on uint8 outputs, for OpenCV's Telea inpainting and each ``label=checkpoint``.

Usage: ``/usr/bin/python3 -m trainer inpaint evaluate an=runs/inpaint-an/best.pt in=runs/inpaint-in/best.pt
[--json out.json] [--figure docs/inpaint-comparison.png]`` (the figure: per photo, the input with its hole
in white, each method's output, and the original).

Choosing the served working size (manifest ``serving.working_max_side``) is done on the VALIDATION photos,
never the test photos: ``--split val --sweep 0,128,160,192 [--flip-tta]`` prints each method's mean PSNR
per working side (validation photos at short side 256, cropped to a multiple of 4, masks drawn with seed 99).
``--flip-tta`` scores every checkpoint with horizontal-flip averaging, as an export with ``--flip-tta`` serves it.

Scoring the real service (its Lanczos resize and mirror padding differ from :func:`model_fn`'s mimic):
``--dump DIR`` writes ``<photo>.png`` and ``<photo>.mask.png`` per test photo, ``npx tsx
scripts/service-outputs.ts inpaint DIR`` posts them to ``POST /v1/inpaint`` and writes ``<photo>.out.png``,
and ``--outputs service=DIR`` scores those files like a checkpoint (FileNotFoundError if one is missing).
"""
from __future__ import annotations

from argparse import Namespace
import json
import os

import numpy as np
import torch
from PIL import Image

from ..data import test_photos
from .data import MASK_KINDS, random_mask, user_mask
from ..metrics import psnr_u8, ssim_u8
from ..color import to_signed, to_u8

VAL_MASK_SEED = 99
MASK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval_masks")
MASK_SEED = 2024
USER_MASK_SEED = 2025
USER_LONGER_SIDE = 384  # the photos of issue 15's hidden set
MASK_SETS = ("legacy",) + MASK_KINDS + ("object",)  # legacy: issue 3's 10-50 % masks at short side 256; object: tuxpaint silhouettes


def detail_sums(out: np.ndarray, true: np.ndarray, mask: np.ndarray, erode: int = 2) -> tuple[float, float]:
    """:func:`trainer.inpaint.adversarial.detail_sums` for one photo as the evaluation holds it: ``out`` and ``true``
    H x W x 3 uint8, ``mask`` H x W (1 = hole). The detail ratio of a set is sum(out) / sum(true) over its photos."""
    from .adversarial import detail_sums as sums
    t = lambda a: torch.from_numpy(np.array(a[..., :3], copy=True)).permute(2, 0, 1)[None].float() / 127.5 - 1
    return sums(t(out), t(true), torch.from_numpy(mask.astype(np.float32))[None, None], erode)


def object_mask(h: int, w: int, rng: np.random.Generator, stamps: list) -> np.ndarray:
    """An object-shaped hole for an h x w photo: a tuxpaint silhouette (trainer.inpaint.adversarial.stamp_masks)
    sized 20-45 % of the shorter side, placed in an h x w canvas (uint8, 1 = hole)."""
    from .adversarial import stamp_masks
    side = min(h, w)
    m = stamp_masks(side, rng, stamps)
    out = np.zeros((h, w), np.uint8)
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out[y0:y0 + side, x0:x0 + side] = m
    return out


def make_object_masks() -> None:
    """Write ``<MASK_DIR>/object/<photo>.png`` for the test photos (seed USER_MASK_SEED + 10; photos at longer side 384)."""
    from .adversarial import load_stamps
    stamps = load_stamps()
    os.makedirs(os.path.join(MASK_DIR, "object"), exist_ok=True)
    rng = np.random.default_rng(USER_MASK_SEED + 10)
    for name in test_photos.NAMES:
        h, w = longer_side(test_photos.load(name, None)).shape[:2]
        Image.fromarray(object_mask(h, w, rng, stamps) * 255).save(os.path.join(MASK_DIR, "object", f"{name}.png"), optimize=True)


def longer_side(img: np.ndarray, side: int = USER_LONGER_SIDE, multiple: int = 8) -> np.ndarray:
    """Resize an H x W x 3 uint8 photo (Lanczos) so its longer side is ``side``, crop to multiples of ``multiple``."""
    h, w = img.shape[:2]
    s = side / max(h, w)
    im = Image.fromarray(img).resize((max(multiple, round(w * s)), max(multiple, round(h * s))), Image.LANCZOS)
    a = np.asarray(im)
    return a[: a.shape[0] // multiple * multiple, : a.shape[1] // multiple * multiple]


def make_masks() -> None:
    """Write the evaluation masks into :data:`MASK_DIR`: ``<photo>.png`` (legacy: 10-50 %, short side 256,
    seed 2024) and ``<kind>/<photo>.png`` for box / stroke / mixed (photo at longer side 384, seed 2025)."""
    os.makedirs(MASK_DIR, exist_ok=True)
    rng = np.random.default_rng(MASK_SEED)
    for name in test_photos.NAMES:
        h, w = test_photos.load(name).shape[:2]
        Image.fromarray(random_mask(h, w, rng) * 255).save(os.path.join(MASK_DIR, f"{name}.png"), optimize=True)
    for i, kind in enumerate(MASK_KINDS):
        os.makedirs(os.path.join(MASK_DIR, kind), exist_ok=True)
        rng = np.random.default_rng(USER_MASK_SEED + i)
        for name in test_photos.NAMES:
            h, w = longer_side(test_photos.load(name, None)).shape[:2]
            Image.fromarray(user_mask(h, w, rng, kind) * 255).save(os.path.join(MASK_DIR, kind, f"{name}.png"), optimize=True)


def load_mask(name: str, kind: str = "legacy") -> np.ndarray:
    """H x W uint8 mask of a test photo, 1 = hole (``kind``: legacy, box, stroke or mixed)."""
    path = os.path.join(MASK_DIR, f"{name}.png") if kind == "legacy" else os.path.join(MASK_DIR, kind, f"{name}.png")
    return (np.asarray(Image.open(path).convert("L")) > 127).astype(np.uint8)


def cases(split: str, kind: str = "legacy", collections: tuple[str, ...] | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 H x W x 3 RGB image, uint8 H x W mask with 1 = hole) for each photo of a split.

    ``test``: the held-out test photos with their committed masks: ``legacy`` at short side 256 (10-50 %
    masks of issue 3), ``box``/``stroke``/``mixed`` at longer side 384 (issue 15's user-like masks).
    ``val``: the validation photos of ``collections`` (default: the old set for ``legacy``, all for the
    others) at the same sizes, masks drawn from seed :data:`VAL_MASK_SEED`.
    Raises ValueError for another split or kind."""
    if kind not in MASK_SETS:
        raise ValueError(f"mask set must be one of {MASK_SETS}, not {kind!r}")
    if split == "test":
        if kind == "object" and not os.path.exists(os.path.join(MASK_DIR, "object", f"{test_photos.NAMES[0]}.png")):
            make_object_masks()
        if kind == "legacy":
            return [(name, test_photos.load(name), load_mask(name)) for name in test_photos.NAMES]
        return [(name, longer_side(test_photos.load(name, None)), load_mask(name, kind)) for name in test_photos.NAMES]
    if split != "val":
        raise ValueError(f"split must be test or val, not {split!r}")
    from ..data import photos
    rng = np.random.default_rng(VAL_MASK_SEED)
    if kind == "object":
        from .adversarial import load_stamps
        stamps = load_stamps()
    coll = collections or (photos.DEFAULT_COLLECTIONS if kind == "legacy" else photos.ALL_COLLECTIONS)
    out = []
    for q in photos.split(photos.index(coll))[1]:
        if kind == "legacy":
            a = photos.load_rgb(q.path, short_side=256)
            h, w = a.shape[0] // 4 * 4, a.shape[1] // 4 * 4
            out.append((q.image_id, a[:h, :w], random_mask(h, w, rng)))
        elif kind == "object":
            a = longer_side(photos.load_rgb(q.path))
            out.append((q.image_id, a, object_mask(*a.shape[:2], rng, stamps)))
        else:
            a = longer_side(photos.load_rgb(q.path))
            out.append((q.image_id, a, user_mask(*a.shape[:2], rng, kind)))
    return out


def navier_stokes(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV's Navier-Stokes inpainting (Bertalmio et al. 2001; radius 3) of an H x W x 3 uint8 RGB image."""
    import cv2
    return cv2.inpaint(img, mask, 3, cv2.INPAINT_NS)


def telea(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV's Telea inpainting (radius 3) of an H x W x 3 uint8 RGB image."""
    import cv2
    return cv2.inpaint(img, mask, 3, cv2.INPAINT_TELEA)


def model_fn(path: str, working_side: int = 0, flip_tta: bool = False, texture: bool = False):
    """A function (img uint8 H x W x 3, mask H x W) -> uint8 H x W x 3 from an inpainter checkpoint.

    ``working_side`` > 0 mimics the service's working-size rule: image (area) and mask (any hole pixel)
    reduced so the longer side is ``working_side``, inpainted, the result resized back (bilinear) and
    composited into the full-resolution hole. ``flip_tta`` averages the result with that of the mirrored
    input (:meth:`~trainer.inpaint.model.Inpainter.flip_averaged`), as an export with ``--flip-tta`` does.
    ``texture`` appends :class:`~trainer.inpaint.texture.TextureTransfer` (chosen settings), as ``--texture`` exports."""
    from .train import build_model
    ck = torch.load(path, map_location="cpu")
    net = build_model(ck["args"])
    # a training checkpoint.pt holds the raw weights and their EMA: evaluate the EMA, as best.pt does
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck.get("ema", ck["model"]).items()})
    net.eval()
    infer = net.flip_averaged if flip_tta else (lambda image, mask: net(image, mask)[1])
    if texture:
        from .texture import TextureTransfer, texture_params
        tt, base = TextureTransfer(**texture_params()).eval(), infer
        infer = lambda image, mask: tt(base(image, mask), mask)

    multiple = 8 if ck["args"].get("arch") == "fill-refine" else 4

    def padded(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``infer`` on image/mask replicate-padded to the net's size multiple (padding known), cropped back."""
        h, w = image.shape[-2:]
        ph, pw = -h % multiple, -w % multiple
        if not ph and not pw:
            return infer(image, mask)
        xi = torch.nn.functional.pad(image, (0, pw, 0, ph), mode="replicate")
        return infer(xi, torch.nn.functional.pad(mask, (0, pw, 0, ph)))[..., :h, :w]

    def run(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(to_signed(img)).permute(2, 0, 1)[None]
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        h, w = mask.shape
        s = min(1.0, working_side / max(h, w)) if working_side else 1.0
        with torch.no_grad():
            if s < 1.0:
                hs, ws = max(4, round(h * s / 4) * 4), max(4, round(w * s / 4) * 4)
                xs = torch.nn.functional.interpolate(x, (hs, ws), mode="area")
                ms = (torch.nn.functional.interpolate(m, (hs, ws), mode="area") > 0).float()
                o = padded(xs, ms)
                o = torch.nn.functional.interpolate(o, (h, w), mode="bilinear", align_corners=False)
                out = o * m + x * (1 - m)
            else:
                out = padded(x, m)
        return to_u8(out[0].permute(1, 2, 0).numpy())
    return run


def outputs_fn(folder: str):
    """A function like :func:`model_fn`'s for outputs made elsewhere: ``folder`` holds ``--dump``'s
    ``<photo>.png`` inputs and ``<photo>.out.png`` results; given an input image (uint8 H x W x 3) it
    returns the result of the dumped input with the same pixels. Raises FileNotFoundError if a result is
    missing, ValueError if the image is not one of the dumped inputs or a result's size differs."""
    inputs = {f[:-4]: np.asarray(Image.open(os.path.join(folder, f)).convert("RGB")) for f in sorted(os.listdir(folder))
              if f.endswith(".png") and not f.endswith((".mask.png", ".out.png"))}

    def run(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        name = next((n for n, x in inputs.items() if x.shape == img.shape and np.array_equal(x, img)), None)
        if name is None:
            raise ValueError(f"outputs: this image is not one of the inputs dumped in {folder}")
        out = np.asarray(Image.open(os.path.join(folder, f"{name}.out.png")).convert("RGB"))
        if out.shape != img.shape:
            raise ValueError(f"outputs: {name}.out.png is {out.shape}, expected {img.shape}")
        return out
    return run


def main(a: Namespace) -> int:
    """The ``inpaint evaluate`` verb (options: ``trainer/inpaint/cli.py``); returns the exit status."""
    if a.make_masks:
        make_masks()
        return 0
    if a.timing:
        return timing(a)
    kinds = MASK_SETS[1:] + ("legacy",) if a.masks == "all" else (a.masks,)
    if len(kinds) > 1:  # one table per mask set
        out = {}
        for kind in kinds:
            print(f"== masks: {kind}", flush=True)
            sub = Namespace(**{**vars(a), "masks": kind, "json": None, "figure": None})
            out[kind] = evaluate_set(sub)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"split": a.split, "mask_sets": out}, f, indent=2)
        return 0
    if a.dump:
        os.makedirs(a.dump, exist_ok=True)
        for name, img, mask in cases(a.split, a.masks):
            Image.fromarray(img).save(os.path.join(a.dump, f"{name}.png"))
            Image.fromarray(mask * 255).save(os.path.join(a.dump, f"{name}.mask.png"))
        return 0
    if a.sweep:
        data = cases(a.split, a.masks)
        print(f"telea      PSNR {np.mean([psnr_u8(img, telea(img, m)) for _, img, m in data]):.2f} dB ({a.split}, {len(data)} photos)")
        for side in (int(v) for v in a.sweep.split(",")):
            row = {}
            for spec in a.checkpoints:
                label, path = spec.split("=", 1)
                fn = model_fn(path, side, a.flip_tta)
                row[label] = round(float(np.mean([psnr_u8(img, fn(img, m)) for _, img, m in data])), 2)
            print(f"side {side or 'native':<6} " + "  ".join(f"{k} {v:.2f} dB" for k, v in row.items()), flush=True)
        return 0
    res = evaluate_set(a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"split": a.split, "masks": describe_masks(a.split, a.masks), "working_side": a.working_side or "native",
                       "flip_tta": a.flip_tta, "results": res}, f, indent=2)
    return 0


def describe_masks(split: str, kind: str) -> str:
    """Where a mask set comes from (for the JSON and the manifest)."""
    if split != "test":
        return f"{kind}, seed {VAL_MASK_SEED}"
    if kind == "legacy":
        return f"trainer/inpaint/eval_masks (seed {MASK_SEED}; 10-50 %, photos at short side 256)"
    return f"trainer/inpaint/eval_masks/{kind} (seed {USER_MASK_SEED + MASK_KINDS.index(kind)}; photos at longer side {USER_LONGER_SIDE})"


def evaluate_set(a: Namespace) -> dict:
    """PSNR / SSIM / MAE of Telea, Navier-Stokes, every checkpoint and every outputs folder on one split and
    mask set (``a.split``, ``a.masks``); prints one line per method, writes ``a.figure``; returns
    ``{label: {"per_photo", "mean"}}``."""
    fns = {"telea": telea, "navier_stokes": navier_stokes,
           **{s.split("=", 1)[0]: model_fn(s.split("=", 1)[1], a.working_side, a.flip_tta) for s in a.checkpoints},
           **{s.split("=", 1)[0]: model_fn(s.split("=", 1)[1], a.working_side, a.flip_tta, True) for s in a.texture},
           **{s.split("=", 1)[0]: outputs_fn(s.split("=", 1)[1]) for s in a.outputs}}
    res = {}
    if a.figure:
        def square(a: np.ndarray) -> np.ndarray:  # centre 256 x 256 crop (white-padded if smaller), so the rows line up
            t, l = max(0, (a.shape[0] - 256) // 2), max(0, (a.shape[1] - 256) // 2)
            c = a[t:t + 256, l:l + 256]
            out = np.full((256, 256, 3), 255, np.uint8)
            out[:c.shape[0], :c.shape[1]] = c
            return out
        rows = []
        by_name = {n: (img, m) for n, img, m in cases(a.split, a.masks)}
        for name in a.figure_photos.split(","):
            img, mask = by_name[name]
            holed = img.copy()
            holed[mask == 1] = 255
            rows.append(np.concatenate([square(holed), *[square(fn(img, mask)) for fn in fns.values()], square(img)], 1))
        Image.fromarray(np.concatenate(rows, 0)).save(a.figure, optimize=True)
        print(f"[figure] {a.figure}: columns input | {' | '.join(fns)} | original", flush=True)
    data = cases(a.split, a.masks)
    for label, fn in fns.items():
        per = {}
        d_out = d_true = 0.0
        for name, img, mask in data:
            out = fn(img, mask)
            so, st = detail_sums(out, img, mask)
            d_out, d_true = d_out + so, d_true + st
            assert np.array_equal(out[mask == 0], img[mask == 0]) or label in ("telea", "navier_stokes")
            per[name] = {"psnr": round(psnr_u8(img, out), 3), "ssim": round(ssim_u8(img, out), 4),
                         "mae": round(float(np.abs(out.astype(np.float64) - img).mean() / 255), 5),
                         "hole_fraction": round(float(mask.mean()), 3)}
            per[name]["detail"] = round(so / st, 4) if st > 0 else None
        mean = {k: round(float(np.mean([v[k] for v in per.values()])), 5) for k in ("psnr", "ssim", "mae")}
        mean["detail_ratio"] = round(d_out / d_true, 4) if d_true > 0 else None
        res[label] = {"per_photo": per, "mean": mean}
        print(f"{label:<14} PSNR {mean['psnr']:.2f} dB  SSIM {mean['ssim']:.4f}  MAE {mean['mae']:.4f}  detail {mean['detail_ratio']}", flush=True)
    return res


def timing(a: Namespace) -> int:
    """``--timing``: seconds per image for Telea, Navier-Stokes and each checkpoint (PyTorch, ``--threads``
    threads; the served ONNX graph is timed by ``npm run bench:inpaint``) at 256^2, 512^2 and 1024^2
    (astronaut resized, a mixed mask); median of ``a.repeats``. Prints a table; returns 0."""
    import time
    torch.set_num_threads(a.threads)
    fns = {"telea": telea, "navier_stokes": navier_stokes,
           **{s.split("=", 1)[0]: model_fn(s.split("=", 1)[1], 0, a.flip_tta) for s in a.checkpoints}}
    src = test_photos.load("astronaut", None)
    for side in (256, 512, 1024):
        img = np.asarray(Image.fromarray(src).resize((side, side), Image.LANCZOS))
        mask = user_mask(side, side, np.random.default_rng(side), "mixed")
        row = {}
        for label, fn in fns.items():
            fn(img, mask)
            ts = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                fn(img, mask)
                ts.append(time.perf_counter() - t)
            row[label] = float(np.median(ts))
        print(f"{side}^2  " + "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in row.items()), flush=True)
    return 0

