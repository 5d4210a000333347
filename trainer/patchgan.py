"""PatchGAN discriminator (pix2pix, Isola et al. 2017, 70x70 receptive field variant, with IN).

Input: B x (cond + 3) x H x W in [-1, 1] (the condition concatenated with a real or generated image).
Output: B x 1 x H/8 x W/8 logits (one per patch), H and W multiples of 8.
"""
from __future__ import annotations

from torch import nn

from .normalization import instance_norm


class PatchGAN(nn.Module):
    """Conv4x4/2 (no norm) LReLU, Conv4x4/2 IN LReLU, Conv4x4/2 IN LReLU, Conv4x4/1 IN LReLU, Conv4x4/1 -> logits."""

    def __init__(self, in_channels: int = 4, ndf: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), instance_norm(2 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1), instance_norm(4 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * ndf, 8 * ndf, 3, 1, 1), instance_norm(8 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(8 * ndf, 1, 3, 1, 1),
        )

    def forward(self, x):
        return self.net(x)
