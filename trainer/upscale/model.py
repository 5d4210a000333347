"""Upscaler: a x4 super-resolution translator with PONO-MS (Li et al. 2019, "Positional Normalization",
section 3.1) on an EDSR-style body without normalization (Lim et al. 2017 removed BN from SR networks; we
report the no-norm base, IN being worse for SR for the same reason: it throws away the absolute intensities
the output must reproduce).

Layout, widths for ``nf = w``, on the low-resolution (LR) input H x W::

    stem  : Conv3x3(3, w) ReLU                                       -> s0      H   x W
    down1 : Conv3x3/2(w, 2w)   [PONO -> mu1, sigma1]  ReLU                      H/2 x W/2
    down2 : Conv3x3/2(2w, 4w)  [PONO -> mu2, sigma2]  ReLU                      H/4 x W/4
    mid   : n_mid x ResBlock(4w)                                                H/4 x W/4
    up1   : [MS(mu2, sigma2)] ConvT3x3/2(4w, 2w) ReLU                           H/2 x W/2
    up2   : [MS(mu1, sigma1)] ConvT3x3/2(2w, w)  ReLU                           H   x W
    fuse  : Conv3x3(2w, w) on [up2, s0]  + n_lr x ResBlock(w)                   H   x W
    tail  : Conv3x3(w, 4w) PixelShuffle(2) ReLU                                 2H  x 2W
            Conv3x3(w, 4 * 3) PixelShuffle(2)                               ->  4H  x 4W x 3
    out   : tail + bicubic x4 of the input (global residual), RGB in [-1, 1] (not clamped; the service
            clamps when it quantizes to uint8)

PONO sits right after each downsampling convolution and MS right before the matching upsampling one, as in
the colorizer (:mod:`trainer.colorize.model`): the encoder's per-pixel mean and spread (the structure of the
photo at H/2 and H/4: where edges and textures are) go straight to the decoder. ``shortcut`` picks the row of
the PONO paper's Table 3 (the equal-budget ablation):

* ``"none"``: the bracketed parts removed;
* ``"ms"``: MS without PONO - mu and sigma are taken and re-injected, the features are not normalized;
* ``"pono_ms"``: PONO-MS (above; the default, and what ``pono_ms=True`` of older runs means);
* ``"pono_dms"``: PONO-DMS - a :class:`~trainer.normalization.DynamicMomentShortcut` per level generates the
  beta and gamma of MS from (mu, sigma): ``dms_multi`` (multi-channel, else one-channel), ``dms_layers`` (1 or
  2 convs), ``dms_kernel`` (3 or 5). It starts as PONO-MS (zero-initialised correction), so a PONO-MS
  checkpoint loads into it with the DMS weights missing and gives the same function. ResBlock = x + 0.1 * Conv(ReLU(Conv(x))) (EDSR, residual scaling).

The contracting path gives the LR body a receptive field of ~80 LR px for telling noise and JPEG blocks from
texture (the degraded inputs of Real-ESRGAN's pipeline); the full-resolution path (s0 and the LR blocks)
keeps the detail the x4 head needs.

Input: B x 3 x H x W float32 RGB in [-1, 1], H and W multiples of 4 (the service pads by reflection).
Output: B x 3 x 4H x 4W float32 RGB (about [-1, 1]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..normalization import PONO, SHORTCUTS, DynamicMomentShortcut, MomentShortcut, pono

SCALE = 4
#: LR H and W must be multiples of this (two stride-2 levels).
SIZE_MULTIPLE = 4


class ResBlock(nn.Module):
    """EDSR residual block without normalization: ``x + res_scale * conv(relu(conv(x)))``; B x C x H x W -> same."""

    def __init__(self, channels: int, res_scale: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(True),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


class Upscaler(nn.Module):
    """The x4 PONO-MS upscaler (module docstring).

    Args:
        nf: base width w.
        n_mid: residual blocks at H/4.
        n_lr: residual blocks at H after the fuse.
        pono_ms: False for the ablation without PONO-MS (= ``shortcut="none"``; kept for older runs' arguments).
        shortcut: one of ``SHORTCUTS`` (module docstring); overrides ``pono_ms`` when given.
        dms_multi, dms_layers, dms_kernel: the PONO-DMS variant (used with ``shortcut="pono_dms"``).
    ``forward(x)``: B x 3 x H x W in [-1, 1] -> B x 3 x 4H x 4W. Raises ValueError for H or W not a multiple
    of 4 (when traced with Python ints), or at construction for an unknown ``shortcut``. ``moments(x)`` ->
    [(mu1, sigma1), (mu2, sigma2)] (B x 1 x H/2 x W/2, B x 1 x H/4 x W/4) for inspection (empty with "none").
    """

    def __init__(self, nf: int = 32, n_mid: int = 4, n_lr: int = 4, pono_ms: bool = True, shortcut: str | None = None,
                 dms_multi: bool = True, dms_layers: int = 1, dms_kernel: int = 3) -> None:
        super().__init__()
        w = nf
        shortcut = shortcut or ("pono_ms" if pono_ms else "none")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        self.shortcut = shortcut
        self.pono_ms = shortcut != "none"  # a moment shortcut of some kind is in the graph
        self.normalize = shortcut in ("pono_ms", "pono_dms")
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(True))
        self.down1 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1)
        self.mid = nn.Sequential(*[ResBlock(4 * w) for _ in range(n_mid)])
        self.up1 = nn.ConvTranspose2d(4 * w, 2 * w, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1)
        self.fuse = nn.Conv2d(2 * w, w, 3, padding=1)
        self.lr_blocks = nn.Sequential(*[ResBlock(w) for _ in range(n_lr)])
        self.tail1 = nn.Conv2d(w, 4 * w, 3, padding=1)
        self.tail2 = nn.Conv2d(w, 4 * 3, 3, padding=1)
        nn.init.zeros_(self.tail2.weight)   # starts as bicubic: training only improves on it
        nn.init.zeros_(self.tail2.bias)
        self.pono = PONO()
        self.moment_shortcut = MomentShortcut()
        if shortcut == "pono_dms":
            # level 2 re-enters before up1 (4w channels), level 1 before up2 (2w channels)
            self.dms2 = DynamicMomentShortcut(4 * w, dms_multi, dms_layers, dms_kernel)
            self.dms1 = DynamicMomentShortcut(2 * w, dms_multi, dms_layers, dms_kernel)

    def _moments(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """PONO of ``f`` -> (features passed on, mu, sigma): normalized features, or ``f`` itself for "ms"."""
        if self.normalize:
            return self.pono(f)
        _, mu, sigma = pono(f)
        return f, mu, sigma

    def _shortcut(self, level: int, f: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.shortcut == "pono_dms":
            return (self.dms1 if level == 1 else self.dms2)(f, mu, sigma)
        return self.moment_shortcut(f, mu, sigma)

    def _check(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2], x.shape[-1]
        if isinstance(h, int) and (h % SIZE_MULTIPLE or w % SIZE_MULTIPLE):
            raise ValueError(f"Upscaler: H and W must be multiples of {SIZE_MULTIPLE}, got {h}x{w}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        s0 = self.stem(x)
        f = self.down1(s0)
        if self.pono_ms:
            f, mu1, sigma1 = self._moments(f)
        f = F.relu(f)
        f = self.down2(f)
        if self.pono_ms:
            f, mu2, sigma2 = self._moments(f)
        f = self.mid(F.relu(f))
        if self.pono_ms:
            f = self._shortcut(2, f, mu2, sigma2)
        f = F.relu(self.up1(f))
        if self.pono_ms:
            f = self._shortcut(1, f, mu1, sigma1)
        f = F.relu(self.up2(f))
        f = self.lr_blocks(self.fuse(torch.cat([f, s0], 1)))
        f = F.relu(F.pixel_shuffle(self.tail1(f), 2))
        r = F.pixel_shuffle(self.tail2(f), 2)
        return r + F.interpolate(x, scale_factor=float(SCALE), mode="bicubic", align_corners=False)

    def moments(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if not self.pono_ms:
            return []
        f = self.down1(self.stem(x))
        f, mu1, s1 = self._moments(f)
        _, mu2, s2 = self._moments(self.down2(F.relu(f)))
        return [(mu1, s1), (mu2, s2)]

    def dms_coefficients(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """PONO-DMS only: the generated [(beta1, gamma1), (beta2, gamma2)] (B x C' x H/2 x W/2, B x C' x H/4 x W/4,
        C' = 2w / 4w multi-channel or 1); empty for the other shortcuts."""
        if self.shortcut != "pono_dms":
            return []
        (mu1, s1), (mu2, s2) = self.moments(x)
        return [self.dms1.coefficients(mu1, s1), self.dms2.coefficients(mu2, s2)]


def build(args: dict) -> Upscaler:
    """An :class:`Upscaler` from a run's saved arguments (``nf``, ``n_mid``, ``n_lr``, and ``shortcut`` with its
    ``dms_*`` options, or the older boolean ``pono_ms``)."""
    return Upscaler(args["nf"], args["n_mid"], args["n_lr"], args.get("pono_ms", True), args.get("shortcut"),
                    args.get("dms_multi", True), args.get("dms_layers", 1), args.get("dms_kernel", 3))
