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
