"""Pieces the upscaler's training loop and its evaluation share (no training, no metrics): tensor <-> uint8
conversion, running a network on one photo, the bicubic and Lanczos baselines, and the whole-photo sets of the
validation and test splits.

Tensors are float32 NCHW RGB in [-1, 1]; images are H x W x 3 uint8 RGB.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..data import photos, test_photos
from .degrade import SCALE


def to_tensor(u8: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 (or N x H x W x 3) -> float32 (N x) 3 x H x W in [-1, 1]."""
    t = torch.from_numpy(np.array(u8, dtype=np.float32)) / 127.5 - 1.0
    return t.permute(2, 0, 1) if t.dim() == 3 else t.permute(0, 3, 1, 2)


def to_u8(t: torch.Tensor) -> np.ndarray:
    """float 3 x H x W in [-1, 1] -> H x W x 3 uint8 (rounded, clipped), as the service quantizes."""
    return ((t.detach().permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)


def upscale_u8(model: torch.nn.Module, lr: np.ndarray) -> np.ndarray:
    """Run the upscaler on one LR image: h x w x 3 uint8 (multiples of 4) -> 4h x 4w x 3 uint8."""
    with torch.no_grad():
        return to_u8(model(to_tensor(lr)[None])[0])


def bicubic_up(lr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """PIL bicubic upscaling: h x w x 3 uint8 -> (scale h) x (scale w) x 3 uint8."""
    return np.asarray(Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.BICUBIC))


def lanczos_up(lr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """PIL Lanczos (a = 3) upscaling: h x w x 3 uint8 -> (scale h) x (scale w) x 3 uint8 (the evaluation's baseline)."""
    return np.asarray(Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.LANCZOS))


def photo_set(split: str, short_side: int = 0) -> dict[str, np.ndarray]:
    """``{name: H x W x 3 uint8}`` of a split's whole photos, cropped to multiples of 16: ``test`` = the 8 held-out
    test photos (as stored, or short side ``short_side``), ``val`` = the validation photos of every collection
    (short side ``short_side`` or 512). Raises FileNotFoundError when the photo packages are not installed."""
    if split == "test":
        imgs = test_photos.load_all(short_side or None)
    else:
        imgs = {p.image_id: photos.load_rgb(p.path, short_side or 512)
                for p in photos.split(photos.index(photos.ALL_COLLECTIONS))[1]}
    return {k: v[: v.shape[0] // 16 * 16, : v.shape[1] // 16 * 16] for k, v in imgs.items()}
