"""The hybrid hinted colorizer (issue 42): a learned colour prior with a confidence, and the user's hints
propagated along the photo's own luma edges (Levin et al. 2004 with a data term,
:mod:`trainer.colorize.propagate`), in one graph exported to ONNX like the other colorizers.

Per image (x = luma B x 1 x H x W in [-1, 1], hints B x 3 x H x W = a*/110, b*/110, mask):

1. **Prior** (the network, at H/2): the hinted colorizer's ab (:class:`~trainer.colorize.hints.HintedColorizer`:
   PONO-MS body with the classification head of Zhang, Isola & Efros 2016, annealed mean T = 0.38, plus the
   hint path of Zhang et al. 2017; without hints it is the automatic colorizer's ab exactly).
2. **Confidence** from the body's own colour distribution ``p`` over the Q ab bins (T = 1):
   ``v = sum_q p_q |ab_q - mean|^2`` (CIE units^2), ``conf = exp(-v / spread^2)`` in (0, 1]. The prior is
   multiplied by it: where the network hesitates between distant colours its chroma shrinks towards gray (a
   near-gray output beats a wrong, sepia one).
3. **Hints, propagated with a reach**: one coarse-to-fine solve (its finest level at H/2 with the shipped
   ``iters``, upsampled bilinearly to H x W) of Levin's system with the hints
   as large data weights (``hint_weight``) and a weak pull to 0 everywhere (``gray_weight``), for three channels
   at once: the hinted a*, b* and a constant 1. The third channel is the hints' *reach* ``rho`` in [0, 1] (1 at
   a hint, fading with distance and across strong luma edges); the first two divided by ``rho`` are the
   propagated colour (normalised, so it does not fade itself).
4. **Blend**: ``ab = a * colour + (1 - a) * (conf * prior + unsure_fill * u * colour)`` with
   ``a = clamp(reach_gain * rho + unsure_reach * u, 0, 1)`` and ``u = (1 - conf) * d``: a hint colours the region
   it reaches; elsewhere the network speaks where it is sure, and where it is not, the hints' propagated colour
   fills in — Levin's spread of the user's colours beats a muted guess there (the validation photos at 3 hints;
   issue 42) — but only as far as the hints **disagree**: ``d = clamp(std / unsure_spread, 0, 1)``, ``std`` the
   spread of the hinted a*b* (CIE units) over the hinted pixels. Hints of one colour (one click, or three on one
   shirt) make ``colour`` one tint everywhere, and spreading it would tint the whole photo (the complaint of
   issue 42): ``d = 0`` keeps them local. Hints that disagree make ``colour`` an edge-aware partition between
   them, the 2004 method's strength. ``colour`` is clamped to |a*|, |b*| <= 110 (far from every hint it is a
   ratio of two tiny numbers). No hints: ``rho = 0`` and ``d = 0`` exactly, so the output is the
   confidence-weighted automatic prior.
5. Decoding as the automatic model: L* from the input luma, Lab -> sRGB, chroma kept with the input's luma
   (the output's BT.601 luma is the input's).

forward(x, hints): x B x 1 x H x W float32 in [-1, 1] and hints B x 3 x H x W (H, W multiples of
:attr:`HybridColorizer.size_multiple`) -> B x 3 x H x W RGB in [-1, 1]. Raises ValueError for other sizes
(when traced with Python ints).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..color import ab_onto_luma
from .hints import AB_SCALE, HINT_SIZE_MULTIPLE, HintedColorizer
from .propagate import VAR_CAP, solve_pyramid


#: the propagated colour's bound (CIE a*, b*): far from every hint it is a ratio of two tiny numbers
AB_LIMIT = 110.0


@dataclass(frozen=True)
class SolveConfig:
    """The hybrid's constants, chosen on the validation photos (``colorize tune-hybrid``).

    spread: the confidence's scale (CIE units; larger = the prior speaks more). hint_weight: data weight of a
    hinted pixel (Levin's rows have weight 1 in all). gray_weight: the pull to 0 that makes a hint's reach fade
    (smaller = reaches further). reach_gain: how fast the blend turns from the prior to the hints' colour as the
    reach grows. hint_prior_reach: the same for the hint path's part of the prior (0: everywhere, as the hint
    path alone, which tints the whole photo). unsure_reach, unsure_fill: how much the hints' colour counts where
    the network is unsure (``1 - conf``), as reach (blend weight) and added to the prior (0, 0: the prior alone
    there); unsure_spread: the spread of the hints' colours (CIE units, standard deviation) at which those terms
    count fully (hints of one colour: not at all). var_cap: the largest sigma_r^2 of the affinities
    (:data:`~trainer.colorize.propagate.VAR_CAP`). levels, iters: the pyramid (``iters[k]`` BiCGSTAB steps at level k, 0 the finest)."""
    spread: float = 55.0
    hint_weight: float = 100.0
    gray_weight: float = 1e-5
    reach_gain: float = 2.0
    hint_prior_reach: float = 4.0
    unsure_reach: float = 0.5
    unsure_fill: float = 0.3
    unsure_spread: float = 5.0
    var_cap: float = VAR_CAP
    levels: int = 4
    iters: tuple[int, ...] = (0, 10, 20, 40)

    def as_json(self) -> dict:
        d = asdict(self)
        d["iters"] = list(self.iters)
        return d


def confidence(logits: torch.Tensor, bins: torch.Tensor, spread: float) -> torch.Tensor:
    """``exp(-v / spread^2)`` with ``v`` the variance (CIE units^2) of the ab bins (Q x 2) under
    ``softmax(logits)``: B x Q x h x w -> B x 1 x h x w in (0, 1]."""
    p = torch.softmax(logits, dim=1)
    mean = F.conv2d(p, bins.t()[:, :, None, None].to(p.dtype))
    sq = F.conv2d(p, (bins * bins).sum(1)[None, :, None, None].to(p.dtype))
    var = torch.clamp(sq - (mean * mean).sum(1, keepdim=True), min=0.0)
    return torch.exp(-var / (spread * spread))


def disagreement(hints: torch.Tensor, spread: float) -> torch.Tensor:
    """How much the hints disagree: the standard deviation of the hinted a*b* (CIE units, over the hinted
    pixels, both channels) over ``spread``, clamped to [0, 1]; hints B x 3 x H x W (a/110, b/110, mask) ->
    B x 1 x 1 x 1. 0 without hints and for hints of one colour."""
    m = hints[:, 2:3]
    n = torch.clamp(m.sum(dim=(2, 3), keepdim=True), min=1.0)
    ab = hints[:, :2] * AB_SCALE * m
    mean = ab.sum(dim=(2, 3), keepdim=True) / n
    var = ((ab * ab).sum(dim=(2, 3), keepdim=True) / n - mean * mean).sum(1, keepdim=True)
    return torch.clamp(torch.sqrt(torch.clamp(var, min=0.0)) / spread, 0.0, 1.0)


def blend(colour: torch.Tensor, reach: torch.Tensor, prior: torch.Tensor, conf: torch.Tensor, hints: torch.Tensor,
          cfg: SolveConfig) -> torch.Tensor:
    """Step 4 of the module docstring: ``a * colour + (1 - a) * (prior + unsure_fill * u * colour)`` with
    ``a = clamp(reach_gain * reach + unsure_reach * u, 0, 1)`` and ``u = (1 - conf) * disagreement(hints)``.
    colour (propagated, :meth:`HybridColorizer.propagate`) and prior (confidence-weighted) B x 2 x H x W in CIE
    a*b* units; reach and conf B x 1 x H x W in [0, 1]; hints B x 3 x H x W (a/110, b/110, mask). Returns the
    blended ab, B x 2 x H x W (CIE units). The blend of :meth:`HybridColorizer.ab`, also used alone by
    ``colorize tune-hybrid`` to re-blend one solve under many ``cfg``."""
    unsure = (1 - conf) * disagreement(hints, cfg.unsure_spread)
    a = torch.clamp(reach * cfg.reach_gain + cfg.unsure_reach * unsure, 0.0, 1.0)
    return a * colour + (1 - a) * (prior + cfg.unsure_fill * unsure * colour)


class HybridColorizer(nn.Module):
    """Network prior x confidence, blended with edge-aware hint propagation (module docstring).

    Args:
        hinted: the hinted colorizer whose ab is the prior (its body's distribution gives the confidence).
        cfg: the solve's constants.
    """

    def __init__(self, hinted: HintedColorizer, cfg: SolveConfig = SolveConfig()) -> None:
        super().__init__()
        self.hinted, self.cfg = hinted, cfg

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this: the hint path's 16 and the pyramid's ``2 ** levels``."""
        return max(HINT_SIZE_MULTIPLE, 2 ** self.cfg.levels)

    def prior(self, x: torch.Tensor, hints: torch.Tensor, reach: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's confidence-weighted prior ab (CIE units, B x 2 x H x W) and the confidence (B x 1 x H x W
        in (0, 1]), both upsampled bilinearly from H/2. The hint path's change to the automatic colours counts only
        where the hints reach (``clamp(hint_prior_reach x reach, 0, 1)``; ``reach`` B x 1 x H x W from
        :meth:`propagate`): the hint path alone tints the whole photo."""
        body = self.hinted.body
        ab, _, logits, auto = self.hinted.ab_half_and_logits(x, hints)
        if self.cfg.hint_prior_reach > 0:
            g = torch.clamp(F.avg_pool2d(reach, 2) * self.cfg.hint_prior_reach, 0.0, 1.0)
            ab = auto + g * (ab - auto)
        conf = confidence(logits, body.ab_bins, self.cfg.spread)
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)
        return up(ab * conf), up(conf)

    def propagate(self, x: torch.Tensor, hints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The hints' propagated colour (B x 2 x H x W, CIE units, within +-:data:`AB_LIMIT`) and reach
        (B x 1 x H x W in [0, ~1])."""
        cfg = self.cfg
        m = hints[:, 2:3]
        c = cfg.hint_weight * m + cfg.gray_weight
        t = torch.cat([hints[:, :2] * AB_SCALE, torch.ones_like(m)], 1) * (cfg.hint_weight * m / c)
        sol = solve_pyramid((x + 1) * 0.5, c, t, cfg.levels, cfg.iters, cfg.var_cap)
        reach = torch.clamp(sol[:, 2:3], min=0.0)
        return torch.clamp(sol[:, :2] / torch.clamp(reach, min=1e-6), -AB_LIMIT, AB_LIMIT), reach

    def ab(self, x: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        """The blended ab, B x 2 x H x W (CIE units). Raises ValueError for H or W not a multiple of
        :attr:`size_multiple`."""
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        if isinstance(h, int) and (h % m or w % m):
            raise ValueError(f"HybridColorizer: H and W must be multiples of {m}, got {h}x{w}")
        colour, reach = self.propagate(x, hints)
        prior, conf = self.prior(x, hints, reach)
        return blend(colour, reach, prior, conf, hints, self.cfg)

    @staticmethod
    def decode(x: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """ab B x 2 x H x W + luma B x 1 x H x W -> RGB B x 3 x H x W in [-1, 1] with the input's luma."""
        return ab_onto_luma(x, ab)

    def forward(self, x: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        return self.decode(x, self.ab(x, hints))
