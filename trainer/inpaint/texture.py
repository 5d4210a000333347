"""Texture transfer for inpainting fills: the high-frequency band of the known photo copied into the hole,
block by block, guided by the smooth fill (issue 30).

Why: an L1-trained inpainter (``inpaint-an`` 1.1.0) predicts the conditional mean, so its fill has the right
colours and large structure but no texture (a smear). Adversarial fine-tunes invented wavy, wrong texture on
this budget (``checkpoints/inpaint/gan-an/``). Texture in a hole is, most of the time, more of the texture next
to it; this module borrows it, like the contextual attention of Yu et al. 2018 ("Generative Image Inpainting
with Contextual Attention", section 4.1: hole patches attend to known patches and copy them) and like
exemplar-based inpainting (Criminisi, Perez & Toyama 2004), but splits the image into two bands, after
Heeger & Bergen 1995: the network's fill keeps the low band (colour, shading, structure: what PSNR rewards),
only the high band (texture, which the fill lacks) is copied.

Algorithm (all ops ONNX opset 17, no loop; ``b`` = ``block`` px; inputs padded to multiples of ``b``):

1. Band split: ``low = G_sigma * fill`` (separable Gaussian, ``sigma`` px, replicate padding),
   ``high = fill - low``.
2. Cells: the ``H/b x W/b`` grid of ``b x b`` blocks; a cell's colour = the mean of ``low`` over it.
   Targets: cells with a hole pixel. A cell is no source when its block, widened by b/2 px on each side, holds a
   pixel whose ``high`` saw the hole (hole dilated by the blur's reach). (Computed from maps at b/2 px per
   cell made once per pass; each of the four grids is 2 x 2 of them.)
3. Matching, every target cell ``i`` against every source cell ``j`` within ``search`` cells in each axis (one
   matmul over the N cells): ``e(i, j) = mean_rgb (cell(i') - cell(j'))^2 + 1[j' is no source]``, averaged over
   the 3 x 3 neighbours ``i'``, ``j'`` of ``i`` and ``j`` (replicate padding at the border) (the descriptor:
   what the smooth fill *can* tell, its colour layout; with ``texture_weight`` also the cell's texture
   statistics - mean |high| per channel, mean |d/dx|, |d/dy| of its luma - where a target's, unknown, are a
   Gaussian-weighted mean (sigma 2 cells) of the known cells' around it),
   plus ``dist_weight * |j - i|^2 / search^2`` (prefer nearby texture), + 1e4 where ``j`` is no source. Each
   target takes the arg-min source (hard: an average of several textures would be a smear again).
4. ``out = fill + w * paste``, ``paste`` = each target's source block of ``high``; ``w`` = ``gain`` x the
   hole, ramped from 1/(ramp+1) at the hole's edge to 1 at ``ramp`` px inside (next to known pixels the smooth
   fill is already right). With ``overlap`` the grid is laid four times (offsets 0 and b/2 in each axis), each
   paste weighted by a separable triangle window (the four weights sum to 1 at every pixel): seams fade.

Pixels outside the hole are unchanged (``w`` is 0 there). A target with no source within ``search`` cells
(the middle of a hole wider than about 2 x search x b px) gets no paste and keeps the smooth fill.

Chosen on the validation photos (54, longer side 384, box and stroke masks of seed 99, the 1.1.0 fill; the
test photos' failure only pointed at what to look for there): block 16 (8 px blocks tiled one source block in
lattices), sigma 1.5 (2.0: -0.05 dB), gain 0.9 (0.8: detail 0.59 / 0.54 on box / stroke, 0.9: 0.66 / 0.60, at
-0.04 / -0.06 dB), ramp 3, search 10, dist_weight 1e-3 (0.05 made every target take the nearest source: rows
of one block), texture_weight 10 (colour alone copied structure into smooth areas: a windmill's blades into the
sky of a validation photo, a temple roof into trees on a test photo; 3 still scattered blade fragments, 30
grainier water). Validation, box / stroke: the
fill alone 33.67 / 39.59 dB, detail 0.05 / 0.09; with the transfer 33.46 / 39.33 dB, detail 0.60 / 0.56 (0.66 /
0.60 without the texture statistics); Telea 31.91 / 39.10 dB, detail 0.15 / 0.29.

Inputs/outputs: ``fill`` B x 3 x H x W float32 in [-1, 1] (the inpainter's composited output), ``mask``
B x 1 x H x W float32 in {0, 1} (1 = hole). Output B x 3 x H x W float32 in [-1, 1]. Cost: N = H W / b^2 cells,
a few N x N float matrices per grid (512^2 px: N = 1024, 4 MB each; 1024^2 px: N = 4096, 64 MB each); onnxruntime,
2 threads, a busy 2-core machine: ~105 ms at 512^2, ~600 ms at 1024^2 (the first, offset-unfold version: 201 / 582
ms at the same load; its gathers, per-grid full-resolution work and n x n prior cost the difference).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .adversarial import luma


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """1-D Gaussian taps (float32, sum 1), radius ceil(3 sigma)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    return k / k.sum()


def texture_params() -> dict:
    """The chosen settings (module docstring) as :class:`TextureTransfer` keyword arguments, for manifests."""
    return {"block": 16, "sigma": 1.5, "gain": 0.9, "dist_weight": 1e-3, "overlap": True, "search": 10, "ramp": 3,
            "texture_weight": 10.0}


class TextureTransfer(nn.Module):
    """The module docstring's transfer; no trained parameters. ``block`` (px, >= 4, even), ``sigma`` (px) of
    the band split, ``gain`` on the pasted high band, ``dist_weight`` of the distance term, ``overlap`` for the
    four half-shifted grids, ``search`` (cells) the largest offset, ``ramp`` (px) of the gain at the hole's edge,
    ``texture_weight`` of the texture statistics in the match (0 = colour only).
    forward(fill, mask) -> B x 3 x H x W (module docstring).
    Raises ValueError for a bad ``block``."""

    def __init__(self, block: int = 16, sigma: float = 1.5, gain: float = 0.9, dist_weight: float = 1e-3,
                 overlap: bool = True, search: int = 10, ramp: int = 3,
                 texture_weight: float = 10.0) -> None:
        super().__init__()
        if block < 4 or block % 2:
            raise ValueError(f"TextureTransfer: block must be an even number >= 4, not {block}")
        self.block, self.sigma, self.gain, self.dist_weight, self.overlap = block, sigma, gain, dist_weight, overlap
        self.search, self.ramp, self.texture_weight = search, ramp, texture_weight
        self.register_buffer("cell_k", gaussian_kernel(2.0), persistent=False)  # 13 taps: radius 6 cells
        k = gaussian_kernel(sigma)
        self.register_buffer("kx", k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), persistent=False)
        self.register_buffer("ky", k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), persistent=False)
        self.reach = (k.numel() - 1) // 2
        tri = 1.0 - (torch.arange(block, dtype=torch.float32) + 0.5 - block / 2).abs() / (block / 2)
        self.register_buffer("tri", tri, persistent=False)  # period-b triangle; shifted by b/2 the two sum to 1

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian of B x 3 x H x W (replicate padding), same shape."""
        r = self.reach
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), self.kx, groups=3)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), self.ky, groups=3)

    def _smooth(self, x: torch.Tensor, c: int) -> torch.Tensor:
        """Gaussian (sigma 2 cells, radius 6, zero padding) of a B x c x h x w cell map, per channel (``c`` a
        Python int, so the exported kernel has a known shape)."""
        kx = self.cell_k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
        ky = self.cell_k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
        return F.conv2d(F.conv2d(x, kx, padding=(0, 6), groups=c), ky, padding=(6, 0), groups=c)

    def _grid(self, lowh: torch.Tensor, maskh: torch.Tensor, dilh: torch.Tensor, feath: torch.Tensor,
              high: torch.Tensor) -> torch.Tensor:
        """One grid's paste field (B x 3 x H x W, H and W multiples of ``block``) from that grid's half-cell maps
        (``block / 2`` px per cell, 2h x 2w): ``lowh`` mean low band, ``maskh`` any hole pixel, ``dilh`` any pixel
        whose high band saw the hole, ``feath`` mean texture features (:meth:`features`); and ``high`` the high
        band at full resolution (what is pasted)."""
        b, K = self.block, self.search
        B, _, H, W = high.shape
        h, w = H // b, W // b
        n = h * w
        cells = F.avg_pool2d(lowh, 2)                                           # B x 3 x h x w
        target = F.max_pool2d(maskh, 2)                                         # B x 1 x h x w: any hole pixel
        touched = F.max_pool2d(F.pad(dilh, (1, 1, 1, 1)), 4, 2)                 # the block widened by b/2 on each side
        src_desc, tgt_desc = cells, cells
        if self.texture_weight > 0:
            # texture statistics of each cell's high band: mean |high| per channel, mean |d/dx| and |d/dy| of
            # its luma (what kind of texture, and which way it runs). A target's own are unknown (the fill has
            # none): estimated from the known cells around it by normalized convolution (a Gaussian-weighted
            # mean of the untouched cells' statistics, sigma 2 cells), like the fill estimates colour.
            stats = F.avg_pool2d(feath, 2)                                      # B x 5 x h x w
            known = 1 - touched
            est = self._smooth(stats * known, 5) / (self._smooth(known, 1) + 1e-6)
            a = math.sqrt(self.texture_weight * 3 / 5)                           # weight per statistic vs colour
            src_desc = torch.cat([cells, a * stats], 1)
            tgt_desc = torch.cat([cells, a * (stats * known + est * touched)], 1)
        # pairwise costs of every target cell i against every source cell j (one matmul: N^2 x 9c, where the
        # offset enumeration of an unfold ran as slow gathers in onnxruntime). Descriptor of a cell = its 3 x 3
        # neighbourhood's (replicate padding at the image border):
        #   e(i, j) = sum over the 9 neighbours and c channels (tgt(i') - src(j'))^2 / 27
        #           (= the mean over the 9 neighbours of the colour's mean squared difference, plus the statistics)
        #           + the share of j's 3 x 3 neighbourhood that is no source (else fill-vs-fill comparisons, ~0, win)
        nb = lambda d: torch.cat([F.pad(d, (1, 1, 1, 1), mode="replicate")[..., qy:qy + h, qx:qx + w]
                                  for qy in range(3) for qx in range(3)], 1).flatten(2)      # B x 9c x n
        S, T = nb(src_desc), nb(tgt_desc)
        e = ((T * T).sum(1)[:, :, None] + (S * S).sum(1)[:, None, :] - 2 * T.transpose(1, 2) @ S) / 27.0
        bad_nb = F.avg_pool2d(touched, 3, 1, 1, count_include_pad=False).flatten(1)          # B x n
        # distance prior and search window (1e4 outside: |dy| or |dx| > K), separable in rows and columns, so
        # built from an h x h and a w x w matrix and one broadcast add into the n x n costs
        def axis(k: int) -> torch.Tensor:
            t = torch.arange(k, device=high.device).to(high.dtype)
            d2 = (t[:, None] - t[None, :]) ** 2
            return self.dist_weight / float(K * K) * d2 + 1e4 * (d2 > K * K).to(high.dtype)
        prior = (axis(h)[:, None, :, None] + axis(w)[None, :, None, :]).reshape(n, n)
        tch = touched.flatten(1)
        cost = e + prior[None] + (bad_nb + 1e4 * tch)[:, None, :]
        src = cost.argmin(2)                                                                   # B x n: flat source cell
        ok = (target.flatten(1) * (1 - tch.gather(1, src))).to(high.dtype)
        blocks = high.reshape(B, 3, h, b, w, b).permute(0, 2, 4, 1, 3, 5).reshape(B, n, 3 * b * b)
        pasted = blocks.gather(1, src[:, :, None].expand(-1, -1, 3 * b * b)) * ok[:, :, None]
        return pasted.reshape(B, h, w, 3, b, b).permute(0, 3, 1, 4, 2, 5).reshape(B, 3, H, W)

    def features(self, high: torch.Tensor) -> torch.Tensor:
        """Per-pixel texture features of the high band (B x 3 x H x W -> B x 5 x H x W): |high| per channel,
        |d/dx| and |d/dy| of its luma (BT.601 weights, :func:`~trainer.inpaint.adversarial.luma`; forward
        differences, 0 in the last column/row). Empty
        (B x 0 x H x W) when ``texture_weight`` is 0."""
        if self.texture_weight <= 0:
            return high[:, :0]
        y = luma(high)                                                          # linear: the high band's luma
        gx = F.pad((y[..., :, 1:] - y[..., :, :-1]).abs(), (0, 1, 0, 0))
        gy = F.pad((y[..., 1:, :] - y[..., :-1, :]).abs(), (0, 0, 0, 1))
        return torch.cat([high.abs(), gx, gy], 1)

    def weight(self, mask: torch.Tensor) -> torch.Tensor:
        """Per-pixel gain of the paste (B x 1 x H x W): ``gain`` x mask, ramped up over the first ``ramp`` px
        inside the hole (a pixel k px from the nearest known pixel (chessboard distance) gets k / (ramp + 1))."""
        if self.ramp <= 0:
            return self.gain * mask
        acc = mask
        for k in range(1, self.ramp + 1):
            acc = acc + (1 - F.max_pool2d(1 - mask, 2 * k + 1, 1, k))
        return self.gain * acc / (self.ramp + 1)

    def forward(self, fill: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s = self.block, self.block // 2
        H, W = fill.shape[-2:]
        ph, pw = -H % b, -W % b                                                  # pad to multiples of b
        # always padded (a Python branch on the size would be frozen into the exported graph)
        fill_p, mask_p = F.pad(fill, (0, pw, 0, ph), mode="replicate"), F.pad(mask, (0, pw, 0, ph), mode="replicate")
        low = self.blur(fill_p)
        high = fill_p - low
        r = self.reach  # the hole dilated by the blur's reach, once (separable max-pool: 2 x 11 taps, not 121)
        dil = F.max_pool2d(F.max_pool2d(mask_p, (1, 2 * r + 1), 1, (0, r)), (2 * r + 1, 1), 1, (r, 0))
        # the grids' inputs at half-cell resolution (b/2 px), once: each grid's cells are 2 x 2 of them
        lowh, feath = F.avg_pool2d(low, s), F.avg_pool2d(self.features(high), s)
        maskh, dilh = F.max_pool2d(mask_p, s), F.max_pool2d(dil, s)
        Hp, Wp = H + ph, W + pw
        if not self.overlap:
            total = self._grid(lowh, maskh, dilh, feath, high)
        else:
            wy0 = self.tri.repeat(Hp // b)                                       # weight of the offset-0 grid, rows
            wx0 = self.tri.repeat(Wp // b)
            # the offset grids: pad b/2 px (one half-cell) on each side, replicating, so a grid cell starts at
            # -b/2; run on H + b (or W + b), crop back; offset 0 in an axis uses the unpadded rows/columns
            lp, fp, mp, dp = (F.pad(t, (1, 1, 1, 1), mode="replicate") for t in (lowh, feath, maskh, dilh))
            hp = F.pad(high, (s, s, s, s), mode="replicate")
            hh, hw = Hp // s, Wp // s
            total = torch.zeros_like(high)
            for oy in (0, s):
                for ox in (0, s):
                    rows_h = slice(0, hh + 2) if oy else slice(1, 1 + hh)
                    cols_h = slice(0, hw + 2) if ox else slice(1, 1 + hw)
                    rows = slice(0, Hp + b) if oy else slice(s, s + Hp)
                    cols = slice(0, Wp + b) if ox else slice(s, s + Wp)
                    field = self._grid(lp[..., rows_h, cols_h], mp[..., rows_h, cols_h], dp[..., rows_h, cols_h],
                                       fp[..., rows_h, cols_h], hp[..., rows, cols])
                    field = field[..., oy:oy + Hp, ox:ox + Wp]
                    wy = wy0 if oy == 0 else 1 - wy0
                    wx = wx0 if ox == 0 else 1 - wx0
                    total = total + field * wy[:, None] * wx[None, :]
        return (fill + self.weight(mask) * total[..., :H, :W]).clamp(-1, 1)
