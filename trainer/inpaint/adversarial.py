"""Texture critic for the inpainter (issue 30): an SN-PatchGAN on the luma of the hole and its surroundings.

SN-PatchGAN (Yu et al. 2019, "Free-Form Image Inpainting with Gated Convolution", section 3.2): five 5x5
stride-2 convolutions with spectral normalization (Miyato et al. 2018) and LeakyReLU(0.2), widths
``ndf * (1, 2, 4, 4, 4)``, then a 3x3 conv to one logit per patch; hinge loss (eq. 3 there):

    L_D = E[relu(1 - D(real))] + E[relu(1 + D(fake))],   L_G = -E[D(fake)]

Two choices of ours, both against the failure seen with a colour critic (wavy coloured stripes inside the
holes, which a detail measure counts as detail):

* **The critic sees luma only** (BT.601 Y of the RGB image) and the mask: ``cat(mask, Y)``, B x 2 x H x W.
  Texture — what a person sees as "detail", and what the issue's detail ratio measures (|Laplacian| of
  luma) — lives in luma; natural photos carry little high-frequency chroma, and the chroma of the fill
  stays driven by the reconstruction loss alone, so the adversarial term cannot buy detail with colour noise.
* **Only patches that meet the hole count** (the mask max-pooled to D's grid, dilated by one patch), in
  both D's and G's losses: the known pixels are copied exactly, so D's other patches say nothing.

Discriminator feature matching (pix2pixHD, Wang et al. 2018, eq. 4): mean L1 between D's intermediate
activations for the real and the composited image (real features detached), each layer weighted equally.

All tensors float32 NCHW, images in [-1, 1], masks {0, 1} with 1 = hole.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

#: BT.601 luma weights (as trainer.color).
_Y = (0.299, 0.587, 0.114)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 Y of an RGB image: B x 3 x H x W in [-1, 1] -> B x 1 x H x W in [-1, 1]."""
    return _Y[0] * rgb[:, 0:1] + _Y[1] * rgb[:, 1:2] + _Y[2] * rgb[:, 2:3]


class SNPatchGAN(nn.Module):
    """SN-PatchGAN critic (module docstring). ``forward(x)``: B x in_channels x H x W (H, W multiples of 32)
    -> (logits B x 1 x H/32 x W/32, [the five hidden activations]).

    Args:
        in_channels: 2 for ``cat(mask, luma)``.
        ndf: base width.
    """

    def __init__(self, in_channels: int = 2, ndf: int = 32) -> None:
        super().__init__()
        widths = [ndf, 2 * ndf, 4 * ndf, 4 * ndf, 4 * ndf]
        layers, c = [], in_channels
        for w in widths:
            layers.append(spectral_norm(nn.Conv2d(c, w, 5, 2, 2)))
            c = w
        self.convs = nn.ModuleList(layers)
        self.head = spectral_norm(nn.Conv2d(c, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        return self.head(x), feats


def critic_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``cat(2 * mask - 1, luma(image))``: B x 3 x H x W RGB in [-1, 1], B x 1 x H x W mask -> B x 2 x H x W."""
    return torch.cat([mask * 2 - 1, luma(image)], 1)


def hole_patches(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Which critic patches meet the hole or touch one that does: mask B x 1 x H x W {0, 1} -> B x 1 x h x w
    float {0, 1} at the critic's grid ``size`` (max-pool, then a 3x3 dilation)."""
    m = F.adaptive_max_pool2d(mask, size)
    return F.max_pool2d(m, 3, 1, 1)


def _masked_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x * w).sum() / w.sum().clamp(min=1.0)


def hinge_step(disc: SNPatchGAN, opt_d: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor,
               mask: torch.Tensor, fm_weight: float = 0.0, sync=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One hinge round: update ``disc`` once on the hole patches of ``real`` / ``fake.detach()``, then return
    ``(loss_d, loss_g_adv, loss_fm)`` for the generator (``loss_g_adv = -mean D(fake)`` over hole patches,
    ``loss_fm`` = ``fm_weight`` x mean L1 of D's features, real detached). D's parameters are frozen while the
    generator's terms are computed, so the caller's backward leaves D's gradients as D's own step left them.

    real, fake: B x 3 x H x W RGB in [-1, 1] (fake = the composited output, with gradients); mask
    B x 1 x H x W {0, 1}. Returns float32 scalars; ``loss_d`` detached. ``sync``
    (:meth:`trainer.distributed.Runtime.sync_grads`) averages D's gradients over the processes before its step
    (each process's hole-patch mean is over its own share of the batch).
    """
    x_real, x_fake = critic_input(real, mask), critic_input(fake, mask)
    d_real, _ = disc(x_real)
    d_fake, _ = disc(x_fake.detach())
    w = hole_patches(mask, d_real.shape[-2:])
    loss_d = _masked_mean(F.relu(1 - d_real), w) + _masked_mean(F.relu(1 + d_fake), w)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if sync is not None:  # trainer.distributed.Runtime.sync_grads: the critic's gradients averaged over processes
        sync(disc)
    opt_d.step()
    for p in disc.parameters():
        p.requires_grad_(False)
    try:
        g_fake, f_fake = disc(x_fake)
        loss_g = -_masked_mean(g_fake, w)
        loss_fm = torch.zeros((), device=real.device)
        if fm_weight > 0:
            with torch.no_grad():
                _, f_real = disc(x_real)
            loss_fm = fm_weight * sum(F.l1_loss(a, b) for a, b in zip(f_fake, f_real)) / len(f_fake)
    finally:
        for p in disc.parameters():
            p.requires_grad_(True)
    return loss_d.detach(), loss_g, loss_fm


def laplacian_abs(y: torch.Tensor) -> torch.Tensor:
    """|4-neighbour Laplacian| of luma: B x 1 x H x W -> B x 1 x H x W (replicate padding)."""
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=y.dtype, device=y.device).view(1, 1, 3, 3)
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k).abs()


def detail_sums(out: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor, erode: int = 2) -> tuple[float, float]:
    """Issue 30's detail measure as two sums, to pool over images: the sum of |Laplacian| of the luma of ``out`` and
    of ``truth`` (B x 3 x H x W in [-1, 1]) over the hole (``mask`` B x 1 x H x W, {0, 1}) eroded by ``erode`` px (a
    pixel stays if its (2 erode + 1)^2 neighbourhood, inside the image, is all hole)."""
    inner = 1 - F.max_pool2d(1 - mask, 2 * erode + 1, 1, erode) if erode > 0 else mask
    lo, lt = laplacian_abs(luma(out)), laplacian_abs(luma(truth))
    return float((lo * inner).sum()), float((lt * inner).sum())


def detail_ratio(out: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor, erode: int = 2) -> float:
    """Issue 30's detail ratio: :func:`detail_sums` of ``out`` over those of ``truth``, pooled over the batch
    (1 = as detailed as the photo, 0 = flat). nan when the eroded hole is empty or the truth is flat there."""
    so, st = detail_sums(out, truth, mask, erode)
    return so / st if st > 0 else float("nan")


def stamp_masks(size: int, rng: np.random.Generator, stamps: list[np.ndarray], min_frac: float = 0.2,
                max_frac: float = 0.45) -> np.ndarray:
    """An object-shaped hole (uint8 size x size, 1 = hole): a random tuxpaint stamp's alpha silhouette,
    scaled so its longer side is U(``min_frac``, ``max_frac``) x ``size``, randomly flipped, dilated by 2 px
    (a user's brush overshoots), placed at a random position. ``stamps``: boolean silhouettes (see
    :func:`load_stamps`). Raises ValueError when ``stamps`` is empty."""
    from PIL import Image, ImageFilter
    if not stamps:
        raise ValueError("stamp_masks: no silhouettes (install tuxpaint-stamps-default)")
    s = stamps[int(rng.integers(len(stamps)))]
    side = max(4, int(size * rng.uniform(min_frac, max_frac)))
    h, w = s.shape
    scale = side / max(h, w)
    img = Image.fromarray((s * 255).astype(np.uint8)).resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.BILINEAR)
    img = img.filter(ImageFilter.MaxFilter(5))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    a = np.asarray(img) >= 128
    out = np.zeros((size, size), np.uint8)
    hh, ww = a.shape
    y0, x0 = int(rng.integers(0, size - hh + 1)), int(rng.integers(0, size - ww + 1))
    out[y0:y0 + hh, x0:x0 + ww] = a
    return out


def load_stamps(root: str = "/usr/share/tuxpaint/stamps", limit: int = 2000) -> list[np.ndarray]:
    """Boolean silhouettes (alpha >= 128, cropped to their bounding box) of the RGBA PNG stamps of Debian's
    ``tuxpaint-stamps-default`` under ``root``, sorted by path (deterministic); [] when not installed.
    Stamps whose silhouette covers under 10 % or over 95 % of their box are skipped (thin lines, squares)."""
    import os

    from PIL import Image
    out = []
    if not os.path.isdir(root):
        return out
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith(".png"))
    for p in paths[:limit]:
        try:
            with Image.open(p) as im:
                if im.mode not in ("RGBA", "LA", "P"):
                    continue
                a = np.asarray(im.convert("RGBA"))[:, :, 3] >= 128
        except OSError:
            continue
        ys, xs = np.nonzero(a)
        if len(ys) == 0:
            continue
        a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        if 0.1 <= a.mean() <= 0.95 and min(a.shape) >= 16:
            out.append(a)
    return out
