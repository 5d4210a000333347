"""Colour conversions shared by the trainer, its evaluation and (mirrored) the service.

Convention (ITU-R BT.601 full range, as in JPEG/JFIF), on values in [0, 1]:
``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb = (B - Y) / 1.772``, ``Cr = (R - Y) / 1.402``.
Networks see ``2 Y - 1`` in [-1, 1] and predict ``2 Cb, 2 Cr`` in [-1, 1]; because the map is
linear, ``R' = Y' + 1.402 Cr'`` etc. also holds on the [-1, 1] scale.
"""
from __future__ import annotations

import numpy as np
import torch

LUMA = (0.299, 0.587, 0.114)


def rgb_to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma. rgb: B x 3 x H x W float in [-1, 1] -> B x 1 x H x W in [-1, 1]."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def rgb_to_chroma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 chroma on the [-1, 1] scale. rgb: B x 3 x H x W in [-1, 1] -> B x 2 x H x W (Cb', Cr') in [-1, 1]."""
    y = rgb_to_luma(rgb)
    return torch.cat([(rgb[:, 2:3] - y) / 1.772, (rgb[:, 0:1] - y) / 1.402], dim=1)


def ycbcr_to_rgb(y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Inverse of the above, clamped to [-1, 1].

    Args:
        y: B x 1 x H x W luma in [-1, 1].
        chroma: B x 2 x H x W (Cb', Cr') in [-1, 1].
    Returns:
        B x 3 x H x W RGB in [-1, 1] (exported to ONNX as Mul/Add/Concat/Clip).
    """
    cb, cr = chroma[:, 0:1], chroma[:, 1:2]
    r = y + 1.402 * cr
    g = y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr
    b = y + 1.772 * cb
    return torch.clamp(torch.cat([r, g, b], dim=1), -1.0, 1.0)


def luma_u8(rgb_u8: np.ndarray) -> np.ndarray:
    """BT.601 luma of an H x W x 3 uint8 image, rounded to H x W uint8 (what a gray photo holds)."""
    y = rgb_u8[..., :3].astype(np.float32) @ np.array(LUMA, dtype=np.float32)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def to_signed(u8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return u8.astype(np.float32) / 127.5 - 1.0


def to_u8(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounded and clamped (as the service does)."""
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
