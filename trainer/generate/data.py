"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (Xiao, Rasul and Vollgraf 2017,
Zalando SE, MIT licence), read straight from its gzipped IDX files under
``/usr/share/datasets/fashion-mnist``.

* images: uint8 N x 28 x 28, 0 = background (black), 255 = brightest; 60,000 train / 10,000 test.
* labels: int64 N in 0..9, names in :data:`CLASSES` (the dataset's own order).
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from ..data import photos

PACKAGE = "dataset-fashion-mnist"
ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SOURCE = {"package": PACKAGE, "dir": ROOT, "upstream": "https://github.com/zalandoresearch/fashion-mnist",
          "copyright": "2017 Zalando SE", "license": "MIT (Expat)"}


def read_idx(path: str) -> np.ndarray:
    """Read one (gzipped) IDX file: uint8 data of the shape its header gives.

    Raises:
        ValueError: for a header that is not an unsigned-byte IDX file or a size mismatch.
        FileNotFoundError: when the file is missing (run :func:`install`).
    """
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {zero:#x} {dtype:#x})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes for dims {dims}")
    return data.reshape(dims)


def install() -> None:
    """apt-get install the dataset package when it is missing (root; a no-op when present)."""
    photos.install([PACKAGE])


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 N x 28 x 28, labels int64 N)`` for ``split`` "train" (60,000) or "test" (10,000).

    Raises:
        ValueError: for another split name.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    if not os.path.exists(os.path.join(ROOT, f"{prefix}-images-idx3-ubyte.gz")):
        install()
    x = read_idx(os.path.join(ROOT, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(ROOT, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"{split}: {len(x)} images but {len(y)} labels")
    return x, y


def to_signed(x: np.ndarray) -> np.ndarray:
    """uint8 N x 28 x 28 → float32 N x 1 x 28 x 28 in [-1, 1] (``v / 127.5 - 1``)."""
    return (x.astype(np.float32) / 127.5 - 1.0)[:, None]
