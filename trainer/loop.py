"""Pieces shared by the training loops: the pix2pix learning-rate schedule, EMA weight averaging,
PSNR on [-1, 1] tensors and the LSGAN adversarial step."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def stop_step(args) -> int:
    """The last step a training loop runs: ``args.stop_at`` when it is set (> 0) and before ``args.steps``,
    else ``args.steps``. Raises ValueError for a negative ``stop_at``."""
    stop_at = getattr(args, "stop_at", 0) or 0
    if stop_at < 0:
        raise ValueError(f"--stop-at must be >= 0, got {stop_at}")
    return min(args.steps, stop_at) if stop_at else args.steps


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


def lsgan_step(disc: torch.nn.Module, opt_d: torch.optim.Optimizer, real: torch.Tensor,
               fake: torch.Tensor, sync=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One least-squares GAN round (Mao et al. 2017, the form of pix2pix's code): update ``disc`` once on
    ``0.5 * (mean((D(real) - 1)^2) + mean(D(fake.detach())^2))``, then return ``(loss_d, loss_g)`` with
    ``loss_g = mean((D(fake) - 1)^2)`` (unweighted; gradients flow to ``fake``'s generator).

    ``real`` and ``fake``: float32 B x C x H x W, the condition concatenated with a real / generated image
    (channels as ``disc`` expects), values in [-1, 1]. ``loss_d`` is detached (for logging). ``sync``
    (:meth:`trainer.distributed.Runtime.sync_grads`) averages the critic's gradients over the processes
    before its step.
    """
    pred_real, pred_fake = disc(real), disc(fake.detach())
    loss_d = 0.5 * (F.mse_loss(pred_real, torch.ones_like(pred_real)) + F.mse_loss(pred_fake, torch.zeros_like(pred_fake)))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if sync is not None:
        sync(disc)
    opt_d.step()
    pred = disc(fake)
    return loss_d.detach(), F.mse_loss(pred, torch.ones_like(pred))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a, b).item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)
