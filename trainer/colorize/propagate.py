"""Edge-aware propagation of colour along the photo's own luma edges (issue 42): Levin, Lischinski & Weiss
2004 ("Colorization using Optimization", SIGGRAPH) with a data term, as one fixed-size tensor program.

Per chroma channel and image, over the pixels ``r``::

    x_r - sum_s w_rs x_s  +  c_r (x_r - t_r)  =  0        i.e.  (I - W + diag(c)) x = c t

* ``w_rs`` are Levin's weights (eq. 2): ``exp(-(Y_r - Y_s)^2 / (2 sigma_r^2))`` over r's 8 neighbours,
  normalised to sum 1 per pixel, ``sigma_r^2`` = 0.6 x the variance of the luma ``Y`` (in [0, 1]) in the
  3 x 3 window around ``r``, floored at 2e-6 (the constants of Levin's code). The rows are *not* symmetric and
  that matters: a flat pixel (sky) gives its textured neighbour almost no weight, so colour enters flat regions
  only from what resembles them. (A symmetric Laplacian with the same weights, solved exactly, lost 1.3 dB to
  Levin on a castle against the sky.)
* ``c_r (x_r - t_r)`` is Barron & Poole 2016's target + confidence ("The Fast Bilateral Solver", ECCV, eq. 1):
  a hint is a large ``c`` holding its colour; a small ``c`` with ``t = 0`` everywhere makes a hint fade with
  distance (:class:`~trainer.colorize.hybrid.HybridColorizer` uses that fade as the hint's *reach*).

:func:`solve` runs a fixed number of Jacobi-preconditioned BiCGSTAB steps (van der Vorst 1992; the system is
non-symmetric, diagonally dominant); :func:`solve_pyramid` runs it coarse to fine (luma and targets
average-pooled by 2 per level, data weights summed since a coarse pixel stands for 4; the coarsest level starts
from its targets, each finer one from the coarser solution upsampled bilinearly). Everything is Conv (one-hot
neighbour kernels), Mul, Add, ReduceSum, AveragePool and Resize with fixed loop counts, so the same code runs in PyTorch
(evaluation) and inside the exported ONNX graph the service runs (the steps as one ``Loop``). A division
``a / b`` is written ``a b / (b^2 + 1e-30)``: a breakdown of BiCGSTAB takes a zero step, never a NaN.

Shapes: luma B x 1 x H x W float32 in [0, 1]; weights ``c`` B x 1 x H x W (>= 0); targets and solutions
B x C x H x W (any units; CIE a*b* here). H and W multiples of ``2 ** levels`` for the pyramid.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: the 8 neighbour offsets (dy, dx).
OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1), (0, -1), (-1, 0), (-1, -1), (-1, 1))
#: channels solved at once (a*, b*, reach).
SOLVE_CHANNELS = 3
#: a channel stops when its squared residual falls below this share of its right-hand side's (1e-5 in norm)
STOP_TOL = 1e-10
#: Levin et al. 2004's factor on the window variance and its floor (luma in [0, 1]).
VAR_FACTOR, VAR_FLOOR = 0.6, 2e-6
#: our cap on it (sigma_r <= 0.05, 13 levels): at a pixel on a strong edge Levin's window variance is the edge's own,
#: and the edge lets colour through
VAR_CAP = 0.0025


def _kernels(channels: int) -> torch.Tensor:
    """8 one-hot 3 x 3 kernels per channel (8C x 1 x 3 x 3, for a conv with ``groups = C``): output
    ``8 c + k`` is channel c's neighbour at OFFSETS[k]."""
    k = np.zeros((len(OFFSETS), 1, 3, 3), np.float32)
    for i, (dy, dx) in enumerate(OFFSETS):
        k[i, 0, 1 + dy, 1 + dx] = 1.0
    return torch.from_numpy(np.tile(k, (channels, 1, 1, 1)))  # a constant when traced


def neighbours(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's 8 neighbours (0 outside the image), one grouped convolution: B x C x H x W -> B x 8C x H x W,
    channel ``8 c + k`` = channel c at OFFSETS[k]."""
    c = x.shape[1]
    return F.conv2d(x, _kernels(c).to(x.dtype), padding=1, groups=c)


def row_weights(y: torch.Tensor, var_cap: float = VAR_CAP) -> torch.Tensor:
    """Levin's weights: luma B x 1 x H x W in [0, 1] -> B x 8 x H x W float32 in [0, 1], channel k = ``w_rs``
    for ``s = r + OFFSETS[k]`` (0 outside the image); each pixel's 8 weights sum to 1. ``var_cap``: the largest
    ``sigma_r^2`` (:data:`VAR_CAP`; Levin's own weights: infinity)."""
    mean = F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, 1)
    mean2 = F.avg_pool2d(F.pad(y * y, (1, 1, 1, 1), mode="replicate"), 3, 1)
    var = torch.clamp(torch.clamp(mean2 - mean * mean, min=0.0) * VAR_FACTOR + VAR_FLOOR, max=var_cap)
    d = y - neighbours(y)
    inside = neighbours(torch.ones_like(y))
    w = torch.exp(-d * d / (2 * var)) * inside
    return w / torch.clamp(w.sum(1, keepdim=True), min=1e-12)


@torch.jit.script
def _matvec(x: torch.Tensor, wc: torch.Tensor, c: torch.Tensor, k3: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
    """``(I - W + diag(c)) x`` for three channels: x B x 3 x H x W, ``wc`` the weights repeated per channel
    (B x 24 x H x W), c B x 1 x H x W, ``k3`` the neighbour kernels (:func:`_kernels`), ``k1`` ones (3 x 8 x 1 x 1)
    -> B x 3 x H x W. Three ops: the neighbours (Conv), Mul, the grouped sum of 8 (Conv 1 x 1); ``groups`` is a
    constant, as ONNX needs."""
    return (1.0 + c) * x - F.conv2d(wc * F.conv2d(x, k3, padding=1, groups=3), k1, groups=3)


@torch.jit.script
def _iterate(x: torch.Tensor, r: torch.Tensor, wc: torch.Tensor, c: torch.Tensor, k3: torch.Tensor, k1: torch.Tensor,
             tol: torch.Tensor, iters: int) -> torch.Tensor:
    """The BiCGSTAB steps of :func:`solve` (scripted: exported as one ONNX ``Loop`` whose body is ~50 nodes,
    instead of ``iters`` unrolled copies: a graph of thousands of nodes takes onnxruntime 10 s to load).
    ``k3``, ``k1``: :func:`_matvec`'s kernels; ``tol``: the squared residual (per image and channel)
    below which a channel stops moving (converged: further steps would only stir float32 round-off): its step
    sizes become 0, so its x and residual stay as they are (consistent) for the remaining steps. Three
    channels (ONNX needs the convolutions' ``groups`` constant)."""
    inv = 1.0 / (1.0 + c)
    rh = r
    rho = torch.ones_like(r[:, :, :1, :1])
    alpha = rho
    omega = rho
    v = torch.zeros_like(r)
    p = torch.zeros_like(r)
    for _ in range(iters):
        live = ((r * r).sum(dim=(2, 3), keepdim=True) > tol).to(r.dtype)
        rho_new = (rh * r).sum(dim=(2, 3), keepdim=True)
        beta = rho_new * rho / (rho * rho + 1e-30) * (alpha * omega / (omega * omega + 1e-30))
        p = r + beta * (p - omega * v)
        pk = p * inv
        v = _matvec(pk, wc, c, k3, k1)
        d = (rh * v).sum(dim=(2, 3), keepdim=True)
        alpha = live * rho_new * d / (d * d + 1e-30)
        s = r - alpha * v
        sk = s * inv
        t = _matvec(sk, wc, c, k3, k1)
        tt = (t * t).sum(dim=(2, 3), keepdim=True)
        omega = live * (t * s).sum(dim=(2, 3), keepdim=True) * tt / (tt * tt + 1e-30)
        x = x + alpha * pk + omega * sk
        r = s - omega * t
        rho = rho_new
    return x


def solve(y: torch.Tensor, c: torch.Tensor, t: torch.Tensor, x0: torch.Tensor, iters: int,
          var_cap: float = VAR_CAP) -> torch.Tensor:
    """``iters`` Jacobi-preconditioned BiCGSTAB steps on ``(I - W + diag(c)) x = c t`` from ``x0``, each image
    and channel on its own; a channel whose residual falls below 1e-5 of its right-hand side (in norm) stops
    there. y: B x 1 x H x W in [0, 1]; c: B x 1 x H x W >= 0; t, x0: B x 3 x H x W (three channels: a*, b* and
    the reach of :mod:`trainer.colorize.hybrid`). Returns B x 3 x H x W. Raises ValueError for C != 3."""
    ch = t.shape[1]
    if ch != SOLVE_CHANNELS:
        raise ValueError(f"solve: {SOLVE_CHANNELS} channels, got {ch}")
    wc = row_weights(y, var_cap).repeat(1, ch, 1, 1)
    k3 = _kernels(ch).to(y.dtype)
    k1 = torch.from_numpy(np.ones((ch, len(OFFSETS), 1, 1), np.float32)).to(y.dtype)  # a constant when traced
    b = c * t
    r = b - _matvec(x0, wc, c, k3, k1)
    tol = (b * b).sum(dim=(2, 3), keepdim=True) * STOP_TOL
    return _iterate(x0, r, wc, c, k3, k1, tol, iters)


def solve_pyramid(y: torch.Tensor, c: torch.Tensor, t: torch.Tensor, levels: int, iters: tuple[int, ...],
                  var_cap: float = VAR_CAP) -> torch.Tensor:
    """Coarse-to-fine :func:`solve` over ``levels`` halvings (H, W multiples of ``2 ** levels``); ``iters[k]``
    steps at level k (0 = full size; the last entry repeats for coarser levels; 0 steps = the coarser solution
    upsampled, nothing solved there). Shapes as :func:`solve`."""
    ys, cs, ts = [y], [c], [t]
    for _ in range(levels):
        cw = F.avg_pool2d(cs[-1], 2)
        ts.append(F.avg_pool2d(cs[-1] * ts[-1], 2) / torch.clamp(cw, min=1e-8))
        cs.append(cw * 4.0)
        ys.append(F.avg_pool2d(ys[-1], 2))
    x = ts[-1]
    for k in range(levels, -1, -1):
        if k < levels:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        n = iters[min(k, len(iters) - 1)]
        if n > 0:
            x = solve(ys[k], cs[k], ts[k], x, n, var_cap)
    return x
