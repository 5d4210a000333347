"""Pieces shared by the training loops: the pix2pix learning-rate schedule, EMA weight averaging and
PSNR on [-1, 1] tensors."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def lr_at(step: int, steps: int, lr: float) -> float:
    """Constant ``lr`` for the first half of ``steps``, then linear decay to 0 (pix2pix schedule)."""
    half = steps // 2
    return lr if step < half else lr * max(0.0, (steps - step) / max(1, steps - half))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """Polyak/EMA update of ``ema`` towards ``model`` with warm-up ``min(decay, (1 + step) / (10 + step))``."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1.0 - d)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a, b).item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)
