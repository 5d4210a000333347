"""Normalization layers used by normgen's networks, named as in their papers.

* PONO  - Positional Normalization, Li et al. 2019, "Positional Normalization", eq. 2.
* MS    - Moment Shortcut, same paper, section 3.1: ``MS(x) = gamma * F(x) + beta`` with
          ``gamma = sigma`` and ``beta = mu`` taken from an earlier PONO.
* IN    - Instance Normalization, Ulyanov et al. 2016, eq. 3 of "Instance Normalization:
          The Missing Ingredient for Fast Stylization", applied at test time too.

All tensors are float32 NCHW: B x C x H x W.
"""
from __future__ import annotations

import torch
from torch import nn

PONO_EPS = 1e-5


def pono(x: torch.Tensor, eps: float = PONO_EPS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positional Normalization (PONO, Li et al. 2019, eq. 2).

    Normalizes every pixel across its channels:
    ``mu[b,h,w] = mean_c x[b,c,h,w]``,
    ``sigma[b,h,w] = sqrt(mean_c (x[b,c,h,w] - mu[b,h,w])^2 + eps)`` (biased variance).

    Args:
        x: float tensor B x C x H x W, any range.
        eps: stability constant added to the variance inside the square root (1e-5).
    Returns:
        ``(x_hat, mu, sigma)``: ``x_hat`` is B x C x H x W with zero mean and unit variance over C
        at every pixel (up to eps); ``mu`` and ``sigma`` are B x 1 x H x W, ``sigma > 0``.
    Raises:
        ValueError: if ``x`` is not 4-D.
    """
    if x.dim() != 4:
        raise ValueError(f"pono expects a 4-D NCHW tensor, got shape {tuple(x.shape)}")
    mu = x.mean(dim=1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=1, keepdim=True)
    sigma = torch.sqrt(var + eps)
    return (x - mu) / sigma, mu, sigma


def moment_shortcut(x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Moment Shortcut (MS, Li et al. 2019, section 3.1): ``gamma * x + beta`` with gamma=sigma, beta=mu.

    Args:
        x: decoder features F(x), B x C x H x W.
        mu: B x 1 x H x W mean from the matching PONO (broadcast over C).
        sigma: B x 1 x H x W standard deviation from the matching PONO.
    Returns:
        B x C x H x W tensor.
    Raises:
        ValueError: if the spatial sizes of ``x`` and the moments differ.
    """
    if mu.shape[-2:] != x.shape[-2:] or sigma.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"moment_shortcut: x {tuple(x.shape)} vs mu {tuple(mu.shape)}: spatial sizes differ")
    return sigma * x + mu


class PONO(nn.Module):
    """PONO as a layer (eq. 2). ``forward(x) -> (x_hat, mu, sigma)``; shapes as in :func:`pono`.

    ``affine=False`` by default, as in PONO-MS where the affine part is the Moment Shortcut.
    """

    def __init__(self, eps: float = PONO_EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return pono(x, self.eps)


class MomentShortcut(nn.Module):
    """MS as a layer (section 3.1): ``forward(x, mu, sigma) = sigma * x + mu``; see :func:`moment_shortcut`."""

    def forward(self, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return moment_shortcut(x, mu, sigma)


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Instance Normalization (IN, Ulyanov et al. 2016, eq. 3), kept at test time.

    Per sample and channel, normalizes over H x W with biased variance, eps 1e-5, and a learned
    per-channel affine. ``track_running_stats=False`` so train and test use the same statistics
    (the paper's point: IN is applied at test time as well). Input/output B x C x H x W.
    """
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False, eps=1e-5)
