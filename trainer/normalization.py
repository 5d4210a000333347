"""Normalization layers used by normgen's networks, named as in their papers.

* PONO  - Positional Normalization, Li et al. 2019, "Positional Normalization", eq. 2.
* MS    - Moment Shortcut, same paper, section 3.1: ``MS(x) = gamma * F(x) + beta`` with
          ``gamma = sigma`` and ``beta = mu`` taken from an earlier PONO.
* DMS   - Dynamic Moment Shortcut, same paper, section 3.1 and Fig. 4 (right): a small ConvNet maps
          ``(mu, sigma)`` to the ``beta`` and ``gamma`` of MS, one-channel or multi-channel (Table 3).
* IN    - Instance Normalization, Ulyanov et al. 2016, eq. 3 of "Instance Normalization:
          The Missing Ingredient for Fast Stylization", applied at test time too.
* AN    - Attentive Normalization, Wang et al. 2020 (semantic layout + regional IN, eqs. 1-6).
* AN (mixture of affine) - Li et al. 2019, "Attentive Normalization", section 3.3, eqs. 6-7:
          BN without affine, then K affine components mixed by ``lambda = sigmoid(FC(GAP(x)))``.
* CBN   - conditional BN (class-specific gamma, beta from an embedding of the class weights).

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


class DynamicMomentShortcut(nn.Module):
    """Dynamic Moment Shortcut (DMS, Li et al. 2019, "Positional Normalization", section 3.1, Fig. 4 right;
    the variants of Table 3): ``DMS(x, mu, sigma) = gamma * x + beta`` where ``(beta, gamma)`` are generated
    from ``[mu, sigma]`` by a ConvNet of ``layers`` (1 or 2) convolutions of ``kernel`` x ``kernel`` (3 or 5).

    * ``multi_channel=False``: beta, gamma are B x 1 x H x W (broadcast over C, as MS);
      ``multi_channel=True``: B x C x H x W (one per decoder channel; Table 3's best, "1 conv 3x3, multi-channel").
    * One layer: ``to_beta``, ``to_gamma`` = Conv(2, C_out) each on ``[mu, sigma]``; two layers: a shared
      Conv(2, 16) ReLU first (a hidden width of 16 keeps it a small ConvNet, as the paper's +0.018 M parameters).
    * Parametrised as a correction of MS, ``beta = mu + g_beta(mu, sigma)``, ``gamma = sigma + g_gamma(mu, sigma)``
      with the last convolution initialised to zero: at step 0 DMS *is* PONO-MS (for one conv this is exactly a
      conv whose centre tap passes mu and sigma through, i.e. the paper's ConvNet with that initialisation), so
      a PONO-MS checkpoint resumes into PONO-DMS without changing the function.

    Args:
        channels: C of the decoder features ``x``.
        multi_channel: see above. layers: 1 or 2. kernel: 3 or 5 (odd; "same" zero padding).
    ``forward(x, mu, sigma)``: x B x C x H x W, mu and sigma B x 1 x H x W float32 -> B x C x H x W.
    ``coefficients(mu, sigma)`` -> ``(beta, gamma)``, each B x C' x H x W with C' = C or 1 (the explain maps).
    Raises:
        ValueError: at construction for layers not in (1, 2) or an even kernel; in forward if the spatial sizes
        of ``x`` and the moments differ.
    """

    def __init__(self, channels: int, multi_channel: bool = True, layers: int = 1, kernel: int = 3) -> None:
        super().__init__()
        if layers not in (1, 2):
            raise ValueError(f"DMS layers must be 1 or 2, got {layers}")
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"DMS kernel must be odd, got {kernel}")
        self.channels, self.multi_channel, self.layers, self.kernel = channels, multi_channel, layers, kernel
        c_out = channels if multi_channel else 1
        pad = kernel // 2
        # one conv: two heads on [mu, sigma]; two convs: a shared Conv(2, 16) ReLU, then the two heads
        c_in = 2
        self.hidden = nn.Identity()
        if layers == 2:
            self.hidden = nn.Sequential(nn.Conv2d(2, 16, kernel, padding=pad), nn.ReLU(True))
            c_in = 16
        self.to_beta = nn.Conv2d(c_in, c_out, kernel, padding=pad)
        self.to_gamma = nn.Conv2d(c_in, c_out, kernel, padding=pad)
        for last in (self.to_beta, self.to_gamma):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def coefficients(self, mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(beta, gamma)`` generated from the moments: each B x C x H x W (multi-channel) or B x 1 x H x W."""
        h = self.hidden(torch.cat([mu, sigma], 1))
        return mu + self.to_beta(h), sigma + self.to_gamma(h)

    def forward(self, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if mu.shape[-2:] != x.shape[-2:] or sigma.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"DMS: x {tuple(x.shape)} vs mu {tuple(mu.shape)}: spatial sizes differ")
        beta, gamma = self.coefficients(mu, sigma)
        return gamma * x + beta


#: The moment-shortcut variants of the PONO paper's Table 3, as the networks' ``shortcut`` argument names them.
SHORTCUTS = ("none", "ms", "pono_ms", "pono_dms")


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Instance Normalization (IN, Ulyanov et al. 2016, eq. 3), kept at test time.

    Per sample and channel, normalizes over H x W with biased variance, eps 1e-5, and a learned
    per-channel affine. ``track_running_stats=False`` so train and test use the same statistics
    (the paper's point: IN is applied at test time as well). Input/output B x C x H x W.
    """
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False, eps=1e-5)


class AttentiveNormalization(nn.Module):
    """Attentive Normalization (AN, Wang et al. 2020, "Attentive Normalization for Conditional Image
    Generation", section 3): a learned soft semantic layout plus regional instance normalization.

    * Semantic entities: a 1x1 conv with ``n`` filters (no bias), ``f(X)``: B x n x H x W; its weight
      ``W`` (n x C) is the matrix of the orthogonality loss, eq. 1 (:func:`orthogonality_loss`).
    * Self-sampling branch (training only): ``k(X)`` (1x1 conv, then ``pool`` x ``pool`` max-pooling) and
      ``q(X)`` (1x1 conv), both B x C_k x ...; ``n`` positions of the pooled ``k(X)`` are drawn uniformly and
      ``F[b, i, j] = k(X)_i^T q(X)_j`` (eq. 2): B x n x H x W.
    * ``S_raw = t * F + f(X)`` with ``t`` (1 x n x 1 x 1) learnable, initialised to 0.1 (eq. 3).
    * Soft layout ``S = softmax(tau * S_raw)`` over the n entities (eq. 4): B x n x H x W, sums to 1 per pixel.
    * Regional normalization (eq. 5): per sample, region i and channel c, the S_i-weighted mean ``mu`` and
      standard deviation ``sigma`` of X (B x n x C); ``X_bar = sum_i ((X - mu_i) / sigma_i * beta_i + alpha_i) * S_i``
      with ``beta_i`` (init 1) and ``alpha_i`` (init 0) learnable per region and channel (n x C).
      eps sits inside the square root, as in IN, so that with one entity this is exactly IN (the paper
      writes ``sigma + eps``).
    * Output ``AN(X) = rho * X_bar + X`` with ``rho`` learnable, initialised to 0 (eq. 6).

    At inference (``eval()``) the module, and the exported ONNX graph, are deterministic, in one of two ways
    (``inference_sampling``):

    * ``"off"`` (default; the paper's rule, section 4): the self-sampling branch is switched off (t = 0);
    * ``"grid"``: the branch stays on with ``n`` fixed, evenly spaced positions of the pooled ``k(X)``
      (flat index ``round(i (P - 1) / (n - 1))``, i = 0..n-1, P pooled positions) instead of random ones.
      Our finding (issue 16): a generator whose learned ``t`` grew to ~0.4 is pushed off its training
      distribution by t = 0 (Fashion-MNIST, 10,000 samples in the project's evaluator: FID 3.44 vs 1.13
      with "grid", accuracy 0.847 vs 0.901); "grid" keeps the layout the network was trained with, still
      without randomness.

    The sums are computed as batched matmuls, never as a B x n x C x H x W tensor: cost O(B n C H W) time
    and O(B C H W + B n H W) memory.

    Args:
        channels: C. n: number of semantic entities (16 in the paper). key_channels: C_k of k and q
        (default max(C // 8, 1)). tau: softmax temperature (0.1). pool: max-pool size of k(X) (2). eps: 1e-5.
        inference_sampling: "off" or "grid" (above); an attribute, so it can be set on a loaded model.
    forward(x): B x C x H x W float -> B x C x H x W.
    Raises ValueError if x is not 4-D with C channels, or (at construction) for another inference_sampling.
    """

    SAMPLINGS = ("off", "grid")

    def __init__(self, channels: int, n: int = 16, key_channels: int | None = None, tau: float = 0.1,
                 pool: int = 2, eps: float = 1e-5, inference_sampling: str = "off") -> None:
        super().__init__()
        if inference_sampling not in self.SAMPLINGS:
            raise ValueError(f"inference_sampling must be one of {self.SAMPLINGS}, got {inference_sampling!r}")
        self.inference_sampling = inference_sampling
        self.channels, self.n, self.tau, self.pool, self.eps = channels, n, tau, pool, eps
        ck = key_channels or max(channels // 8, 1)
        self.entities = nn.Conv2d(channels, n, 1, bias=False)
        self.key = nn.Conv2d(channels, ck, 1)
        self.query = nn.Conv2d(channels, ck, 1)
        self.t = nn.Parameter(torch.full((1, n, 1, 1), 0.1))
        self.beta = nn.Parameter(torch.ones(n, channels))
        self.alpha = nn.Parameter(torch.zeros(n, channels))
        self.rho = nn.Parameter(torch.zeros(1))

    def semantic_layout(self, x: torch.Tensor) -> torch.Tensor:
        """Soft semantic layout S (eqs. 2-4): B x n x H x W, softmax over n. Self-sampling at random positions in
        training; at fixed evenly spaced ones in eval with ``inference_sampling == "grid"``; none otherwise."""
        s_raw = self.entities(x)
        if self.training or self.inference_sampling == "grid":
            k = nn.functional.max_pool2d(self.key(x), self.pool, ceil_mode=True).flatten(2)  # B x Ck x h'w'
            if self.training:
                idx = torch.randint(k.shape[-1], (self.n,), device=x.device)
            else:
                idx = grid_positions(k.shape[-1], self.n, x.device)
            activation = torch.einsum("bci,bchw->bihw", k[:, :, idx], self.query(x))  # F, eq. 2
            s_raw = self.t * activation + s_raw  # eq. 3
        return torch.softmax(self.tau * s_raw, dim=1)  # eq. 4

    def regional_norm(self, x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        """Regional instance normalization (eq. 5). x: B x C x H x W, layout: B x n x H x W -> B x C x H x W."""
        b, c, h, w = x.shape
        s = layout.flatten(2)  # B x n x HW
        xf = x.flatten(2)  # B x C x HW
        mass = s.sum(-1, keepdim=True).clamp_min(1e-12)  # B x n x 1
        mu = torch.bmm(s, xf.transpose(1, 2)) / mass  # B x n x C
        ex2 = torch.bmm(s, (xf * xf).transpose(1, 2)) / mass
        sigma = torch.sqrt((ex2 - mu * mu).clamp_min(0.0) + self.eps)
        scale = self.beta / sigma  # B x n x C:  beta_i / sigma_i
        shift = self.alpha - mu * scale  # alpha_i - mu_i beta_i / sigma_i
        # sum_i S_i (x * scale_i + shift_i) = x * (S^T scale) + S^T shift
        a = torch.bmm(scale.transpose(1, 2), s)  # B x C x HW
        d = torch.bmm(shift.transpose(1, 2), s)
        return (xf * a + d).view(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"AN expects B x {self.channels} x H x W, got {tuple(x.shape)}")
        return self.rho * self.regional_norm(x, self.semantic_layout(x)) + x  # eq. 6


def grid_positions(p: int | torch.Tensor, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` evenly spaced flat indices into ``p`` positions, ``round(i (p - 1) / (n - 1))`` (half to even)
    for i = 0..n-1 (all 0 when n = 1): int64 (n,). The fixed self-sampling set of
    :class:`AttentiveNormalization`'s ``inference_sampling="grid"``; indices repeat when n > p. Written in
    tensor ops, so an ONNX export with dynamic H, W computes it from the traced shape."""
    if n == 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    i = torch.arange(n, device=device, dtype=torch.float32)
    return torch.round(i * (torch.as_tensor(p, device=device, dtype=torch.float32) - 1) / (n - 1)).long()


def orthogonality_loss(an: AttentiveNormalization, lambda_o: float = 1.0) -> torch.Tensor:
    """Orthogonality regularizer of AN's semantic entities (Wang et al. 2020, eq. 1):
    ``lambda_o * ||W W^T - I||_F^2`` with W the n x C entity filter matrix. Returns a scalar tensor >= 0."""
    w = an.entities.weight.flatten(1)  # n x C
    eye = torch.eye(w.shape[0], device=w.device, dtype=w.dtype)
    return lambda_o * ((w @ w.t() - eye) ** 2).sum()


class MixtureAffineAN(nn.BatchNorm2d):
    """Attentive Normalization with a mixture of affine transformations (Li et al. 2019,
    "Attentive Normalization", section 3.3), BN as the backbone.

    ``x_hat = BN(x)`` without affine (batch statistics in training, running statistics in eval);
    ``lambda = sigmoid(FC(GAP(x)))``: B x K (eq. 6); ``gamma = lambda @ Gamma``, ``beta = lambda @ Beta``
    with Gamma, Beta: K x C; output ``gamma * x_hat + beta`` (eq. 7). Initialisation as the paper's
    section 4: ``Gamma = 1 + 0.1 N(0, 1)``, ``Beta = 0.1 N(0, 1)``.

    Args: channels C, k K (number of affine components), eps, momentum as BN.
    forward(x): B x C x H x W float -> B x C x H x W. Raises ValueError if x is not B x C x H x W.
    """

    def __init__(self, channels: int, k: int = 5, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(channels, eps=eps, momentum=momentum, affine=False)
        self.k = k
        self.gamma = nn.Parameter(1.0 + 0.1 * torch.randn(k, channels))
        self.beta = nn.Parameter(0.1 * torch.randn(k, channels))
        self.fc = nn.Linear(channels, k)

    def mixture_weights(self, x: torch.Tensor) -> torch.Tensor:
        """lambda = sigmoid(FC(GAP(x))) (eq. 6): B x K in (0, 1)."""
        return torch.sigmoid(self.fc(x.mean((2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"MixtureAffineAN expects B x {self.num_features} x H x W, got {tuple(x.shape)}")
        lam = self.mixture_weights(x)
        x_hat = super().forward(x)
        return (lam @ self.gamma)[:, :, None, None] * x_hat + (lam @ self.beta)[:, :, None, None]  # eq. 7


class ConditionalBN(nn.BatchNorm2d):
    """Conditional BN (de Vries et al. 2017; Miyato and Koyama 2018): BN without affine, then a
    class-specific ``gamma = y @ G`` and ``beta = y @ B`` (G, B: n_classes x C; G initialised to 1, B to 0).

    ``y`` is a class-weight vector B x n_classes (one-hot, or any convex mix: the affine parameters are
    then the same mix of the classes', which makes categorical interpolation one forward pass).
    forward(x B x C x H x W, y B x n_classes) -> B x C x H x W.
    """

    def __init__(self, channels: int, n_classes: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(channels, eps=eps, momentum=momentum, affine=False)
        self.gamma_embed = nn.Parameter(torch.ones(n_classes, channels))
        self.beta_embed = nn.Parameter(torch.zeros(n_classes, channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x_hat = super().forward(x)
        return (y @ self.gamma_embed)[:, :, None, None] * x_hat + (y @ self.beta_embed)[:, :, None, None]
