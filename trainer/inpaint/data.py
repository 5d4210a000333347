"""Random inpainting masks: rectangles and free-form strokes covering a fraction of the image.

:func:`random_mask` returns an H x W uint8 array, 1 = hole, 0 = keep, with hole coverage in
``[min_cover, max_cover]`` (default 10-50 %, as issue 3 asks), drawn with a seeded ``numpy`` generator
(same seed, same mask). Strokes are thick polylines with random vertices, widths and angles (after
Yu et al. 2019, free-form masks), drawn with PIL.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def _stroke(draw: ImageDraw.ImageDraw, rng: np.random.Generator, h: int, w: int) -> None:
    x, y = rng.integers(w), rng.integers(h)
    width = int(rng.integers(max(2, min(h, w) // 24), max(3, min(h, w) // 8)))
    for _ in range(int(rng.integers(3, 9))):
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.1, 0.35) * min(h, w)
        nx = int(np.clip(x + length * np.cos(angle), 0, w - 1))
        ny = int(np.clip(y + length * np.sin(angle), 0, h - 1))
        draw.line([(x, y), (nx, ny)], fill=1, width=width)
        draw.ellipse([nx - width // 2, ny - width // 2, nx + width // 2, ny + width // 2], fill=1)
        x, y = nx, ny


def random_mask(h: int, w: int, rng: np.random.Generator, min_cover: float = 0.1, max_cover: float = 0.5) -> np.ndarray:
    """One H x W uint8 mask (1 = hole) of rectangles and/or strokes with coverage in [min_cover, max_cover].
    Raises ValueError if the bounds are not 0 < min_cover <= max_cover < 1."""
    if not 0 < min_cover <= max_cover < 1:
        raise ValueError("need 0 < min_cover <= max_cover < 1")
    while True:
        img = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(img)
        target = rng.uniform(min_cover, max_cover)
        for _ in range(64):
            if rng.random() < 0.5:
                rh, rw = int(rng.uniform(0.1, 0.5) * h), int(rng.uniform(0.1, 0.5) * w)
                y0, x0 = rng.integers(0, h - rh + 1), rng.integers(0, w - rw + 1)
                draw.rectangle([x0, y0, x0 + rw - 1, y0 + rh - 1], fill=1)
            else:
                _stroke(draw, rng, h, w)
            m = np.asarray(img, dtype=np.uint8)
            cover = m.mean()
            if cover >= target:
                break
        if min_cover <= cover <= max_cover:
            return m.copy()


MASK_KINDS = ("box", "stroke", "mixed")


def user_mask(h: int, w: int, rng: np.random.Generator, kind: str = "mixed", ref: tuple[int, int] | None = None) -> np.ndarray:
    """A mask like a user's (issue 15), H x W uint8, 1 = hole. Sizes are relative to the photo, ``ref`` =
    its (height, width) (default: the mask's own; a training crop passes the photo's), and scale with its
    longer side over 384 px:

    * ``box``: one rectangle of 15-30 % of each side of the photo (clipped to the mask);
    * ``stroke``: a 5-point polyline 8-13 px wide (round joins), segments 10-30 % of the longer side;
    * ``mixed``: one of each; when ``ref`` is the mask's own size, redrawn until the hole covers 8-18 %.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
    rh_ref, rw_ref = ref or (h, w)
    s = max(rh_ref, rw_ref) / 384
    while True:
        img = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(img)
        if kind in ("box", "mixed"):
            rh, rw = min(h, int(rng.uniform(0.15, 0.30) * rh_ref)), min(w, int(rng.uniform(0.15, 0.30) * rw_ref))
            y0, x0 = rng.integers(0, h - rh + 1), rng.integers(0, w - rw + 1)
            draw.rectangle([x0, y0, x0 + rw - 1, y0 + rh - 1], fill=1)
        if kind in ("stroke", "mixed"):
            width = max(1, int(round(rng.uniform(8, 13) * s)))
            pts = [(int(rng.integers(w)), int(rng.integers(h)))]
            for _ in range(4):
                angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3) * max(rh_ref, rw_ref)
                x = int(np.clip(pts[-1][0] + length * np.cos(angle), 0, w - 1))
                y = int(np.clip(pts[-1][1] + length * np.sin(angle), 0, h - 1))
                pts.append((x, y))
            draw.line(pts, fill=1, width=width, joint="curve")
            for x, y in pts:
                draw.ellipse([x - width // 2, y - width // 2, x + width // 2, y + width // 2], fill=1)
        m = np.asarray(img, dtype=np.uint8).copy()
        if kind != "mixed" or ref is not None or 0.08 <= m.mean() <= 0.18:
            return m


def training_mask(size: int, rng: np.random.Generator, ref_side: float = 384.0) -> np.ndarray:
    """One size x size training mask (uint8, 1 = hole) for the fill-refine inpainter: a user-like mask
    (:func:`user_mask`; 50 % mixed, 15 % box, 15 % stroke) sized for a photo whose sides are
    ``ref_side`` x U(0.8, 1.25) each, or (20 %) a 10-50 % :func:`random_mask`; never empty."""
    while True:
        u = rng.random()
        if u < 0.2:
            return random_mask(size, size, rng)
        kind = "mixed" if u < 0.7 else ("box" if u < 0.85 else "stroke")
        ref = (int(ref_side * rng.uniform(0.8, 1.25)), int(ref_side * rng.uniform(0.8, 1.25)))
        m = user_mask(size, size, rng, kind, ref)
        if m.any() and not m.all():
            return m
