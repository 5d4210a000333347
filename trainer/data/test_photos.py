"""Held-out test photos, never trained on: skimage astronaut/coffee/chelsea/rocket, sklearn china/flower,
matplotlib grace_hopper and scipy's raccoon face (all shipped inside Debian's python3-* packages).

:func:`load_all` returns ``{name: H x W x 3 uint8 RGB}``; with ``short_side`` each is resized
(Lanczos) so that its short side is that many pixels, then center-cropped to multiples of 4.
"""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

NAMES = ["astronaut", "coffee", "chelsea", "rocket", "china", "flower", "grace_hopper", "raccoon_face"]


def _raw(name: str) -> np.ndarray:
    if name in ("astronaut", "coffee", "chelsea", "rocket"):
        import skimage.data
        return getattr(skimage.data, name)()
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        return load_sample_image(f"{name}.jpg")
    if name == "grace_hopper":
        import matplotlib.cbook as cbook
        return np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    if name == "raccoon_face":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import scipy.misc
            return scipy.misc.face()
    raise KeyError(name)


def load(name: str, short_side: int | None = 256, multiple: int = 4) -> np.ndarray:
    """One test photo as H x W x 3 uint8 RGB (see module doc). Raises KeyError for an unknown name."""
    img = Image.fromarray(np.ascontiguousarray(_raw(name)[..., :3]))
    if short_side is not None:
        s = short_side / min(img.size)
        img = img.resize((round(img.size[0] * s), round(img.size[1] * s)), Image.LANCZOS)
    a = np.asarray(img)
    h, w = a.shape[0] // multiple * multiple, a.shape[1] // multiple * multiple
    y, x = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return np.ascontiguousarray(a[y:y + h, x:x + w])


def load_all(short_side: int | None = 256) -> dict[str, np.ndarray]:
    """All eight test photos, ``{name: H x W x 3 uint8}``."""
    return {n: load(n, short_side) for n in NAMES}
