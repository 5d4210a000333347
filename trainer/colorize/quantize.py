"""The colour classes of "Colorful Image Colorization" (Zhang, Isola & Efros 2016, section 2.1-2.2).

* **Quantized ab**: the a*b* plane of CIE Lab cut into a grid of size 10; the *in-gamut* bins (the ab of
  some sRGB colour falls in the cell) are the ``Q`` classes (:func:`gamut_bins`: Q = 261 for sRGB/D65;
  the paper's gamut test gave 313).
* **Soft-encoding** of a ground-truth ab (eq. 2's Z = H_gt^-1(Y)): its 5 nearest bin centres, weighted by
  a Gaussian kernel of sigma 5 (:func:`soft_encode`).
* **Class rebalancing** (eq. 3-4): ``w ∝ ((1 - lambda) p~ + lambda / Q)^-1`` with ``p~`` the empirical ab
  prior of the training photos smoothed by a Gaussian of sigma 5 in ab, lambda 0.5, normalised so that
  ``E_p~[w] = 1`` (:func:`rebalance_weights`); a pixel's weight is that of its nearest bin.
* **Annealed mean** (eq. 5): ``H(Z) = E[f_T(Z)]``, ``f_T(z) = exp(log z / T) / sum exp(log z / T)``, i.e. a
  softmax of the logits divided by T, then the mean of the bin centres under it; T = 0.38
  (:func:`annealed_mean`). It runs inside the exported ONNX graph (Div, Softmax, Conv 1x1).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

GRID = 10
AB_RANGE = 110
SOFT_K = 5
SIGMA = 5.0
LAMBDA = 0.5
TEMPERATURE = 0.38


@functools.lru_cache(maxsize=4)
def gamut_bins(grid: int = GRID, step: int = 3) -> np.ndarray:
    """In-gamut ab bin centres, float32 Q x 2 (a, b) in CIE units, sorted by a then b: the cells of the
    ``grid`` lattice (centres at multiples of ``grid``) that hold the a*b* of at least one sRGB colour
    (the RGB cube sampled every ``step`` levels of 255, converted with :func:`trainer.color.rgb_to_lab`).
    261 bins for grid 10 (the paper reports 313 with its own gamut test). Cached; do not mutate."""
    from ..color import rgb_to_lab
    v = torch.arange(0, 256, step, dtype=torch.float64) / 255
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij"), 0).reshape(1, 3, -1, 1)
    ab = rgb_to_lab(rgb)[0, 1:, :, 0]
    cells = torch.unique(torch.round(ab / grid).to(torch.int64).t(), dim=0)
    return (cells.numpy() * grid).astype(np.float32)


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, k: int = SOFT_K, sigma: float = SIGMA) -> torch.Tensor:
    """Soft-encoding of ground-truth ab: B x 2 x H x W (CIE units) -> B x Q x H x W float32 class targets,
    each pixel's ``k`` nearest of the Q bin centres (``bins`` Q x 2) weighted by exp(-d^2 / (2 sigma^2)),
    summing to 1."""
    b, _, h, w = ab.shape
    d2 = ((ab.permute(0, 2, 3, 1).reshape(-1, 1, 2) - bins[None]) ** 2).sum(-1)  # N x Q
    dk, ik = d2.topk(k, dim=1, largest=False)
    wk = torch.softmax(-dk / (2 * sigma ** 2), dim=1)
    z = torch.zeros_like(d2).scatter_(1, ik, wk)
    return z.reshape(b, h, w, -1).permute(0, 3, 1, 2)


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Index (int64 B x H x W) of the nearest bin centre of each pixel of ab B x 2 x H x W."""
    b, _, h, w = ab.shape
    d2 = ((ab.permute(0, 2, 3, 1).reshape(-1, 1, 2) - bins[None]) ** 2).sum(-1)
    return d2.argmin(1).reshape(b, h, w)


def empirical_prior(counts: np.ndarray, bins: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """p~: bin counts (Q) normalised and smoothed by a Gaussian of ``sigma`` in ab (over the Q centres),
    float64 Q summing to 1."""
    p = counts.astype(np.float64) / max(counts.sum(), 1)
    d2 = ((bins[:, None, :].astype(np.float64) - bins[None, :, :]) ** 2).sum(-1)
    kern = np.exp(-d2 / (2 * sigma ** 2))
    smooth = kern @ p
    return smooth / smooth.sum()


def rebalance_weights(prior: np.ndarray, lam: float = LAMBDA) -> np.ndarray:
    """Class-rebalancing weights (eq. 4): ``((1 - lam) p~ + lam / Q)^-1`` scaled so ``sum p~ w = 1``;
    float32 Q."""
    w = 1.0 / ((1 - lam) * prior + lam / len(prior))
    return (w / (prior * w).sum()).astype(np.float32)


def rebalanced_ce(logits: torch.Tensor, z: torch.Tensor, weights: torch.Tensor, nearest: torch.Tensor) -> torch.Tensor:
    """Eq. 2 with eq. 3's weighting: ``mean over pixels of -w(q*) sum_q z_q log softmax(logits)_q``.

    logits, z: B x Q x H x W; weights: Q; nearest: B x H x W bin index q* of each pixel. Returns a scalar."""
    ce = -(z * F.log_softmax(logits, dim=1)).sum(1)
    return (weights[nearest] * ce).mean()


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Eq. 5: B x Q x H x W logits -> B x 2 x H x W ab (CIE units), the mean of the bin centres under
    ``softmax(logits / T)``. T = 1 is the plain mean, T -> 0 the mode."""
    p = torch.softmax(logits / temperature, dim=1)
    return F.conv2d(p, bins.t()[:, :, None, None].to(p.dtype))


def colourfulness(rgb_u8: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M3 of an H x W x 3 uint8 image:
    ``sqrt(var(rg) + var(yb)) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``, rg = R - G, yb = (R + G) / 2 - B."""
    x = rgb_u8[..., :3].astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def ab_error_auc(pred_u8: np.ndarray, true_u8: np.ndarray, max_threshold: float = 150.0) -> float:
    """Zhang 2016 section 3.1, 'AuC': the area under the cumulative distribution of per-pixel ab errors
    (Euclidean, CIE units) for thresholds 0..150, normalised to [0, 1] (1 = every pixel exact)."""
    def ab(u8: np.ndarray) -> torch.Tensor:
        from ..color import rgb_to_lab
        t = torch.from_numpy(u8[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None]
        return rgb_to_lab(t.double())[0, 1:]
    err = torch.linalg.norm(ab(pred_u8) - ab(true_u8), dim=0).flatten().numpy()
    thresholds = np.arange(0, max_threshold + 1, 1.0)
    cdf = (err[None, :] <= thresholds[:, None]).mean(1)
    return float(np.trapz(cdf, thresholds) / max_threshold)


def lab_ab(rgb_u8: np.ndarray) -> np.ndarray:
    """CIE a*b* of an H x W x 3 uint8 image -> float32 2 x H x W (as :func:`~trainer.colorize.hints.true_ab`)."""
    from ..color import rgb_to_lab
    t = torch.from_numpy(np.array(rgb_u8, copy=True)).permute(2, 0, 1)[None].float() / 127.5 - 1
    return rgb_to_lab((t + 1) * 0.5)[0, 1:].numpy()


def hue_agreement(pred: np.ndarray, true: np.ndarray, min_true: float = 20.0, min_pred: float = 8.0,
                  max_deg: float = 45.0) -> float:
    """Share of ``true``'s pixels with Lab chroma > ``min_true`` whose ``pred`` pixel has chroma > ``min_pred``
    and a hue within ``max_deg`` degrees (both H x W x 3 uint8). nan when no pixel of ``true`` is that colourful."""
    at, ap = lab_ab(true), lab_ab(pred)
    ct, cp = np.hypot(at[0], at[1]), np.hypot(ap[0], ap[1])
    sel = ct > min_true
    if not sel.any():
        return float("nan")
    d = np.degrees(np.abs(np.arctan2(at[1], at[0]) - np.arctan2(ap[1], ap[0])))
    d = np.minimum(d, 360 - d)
    return float(((cp > min_pred) & (d <= max_deg))[sel].mean())
