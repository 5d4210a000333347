"""Inpainters. Two architectures (``arch`` in a checkpoint's args):

* ``"fill-refine"`` (:class:`FillRefineInpainter`, inpaint-an 1.0.0, issue 15): a mask-aware push-pull fill
  computed in the graph (:func:`push_pull_fill`) refined at full resolution by a U-Net with Attentive
  Normalization and an image-wide context at H/8.
* ``"two-stage"`` (:class:`Inpainter`, inpaint-an 0.x): the design below.

Inpainter: two-stage coarse-to-refine encoder-decoder (after Yu et al. 2018, "Generative Image
Inpainting with Contextual Attention"), with Attentive Normalization in the refinement stage on a
large (H/4) feature map (Wang et al. 2020, section 4 and 5.3). ``norm="in"`` puts plain IN in AN's
place: the ablation of the paper's Table 3.

Input: ``image`` B x 3 x H x W in [-1, 1] and ``mask`` B x 1 x H x W in {0, 1} (1 = hole), H and W
multiples of 4. The network sees ``cat(image * (1 - mask), mask)``. Each stage::

    conv5x5(4, w) IN ReLU | conv3x3/2(w, 2w) IN ReLU | conv3x3/2(2w, 4w) IN ReLU      -> H/4
    [refine only: AN(4w) or IN(4w)]
    3 x dilated conv3x3(4w) (dilation 2, 4, 8) IN ReLU
    up2x conv3x3(4w, 2w) IN ReLU | up2x conv3x3(2w, w) IN ReLU | conv3x3(w, 3) tanh   -> H

The coarse result is composited into the known pixels before the refinement stage; the refined
result is composited again: ``out = G * M + X * (1 - M)`` (exact known pixels).
forward(image, mask) -> (coarse B x 3 x H x W, out B x 3 x H x W), both in [-1, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..normalization import AttentiveNormalization, instance_norm

SIZE_MULTIPLE = 4
FILL_REFINE_MULTIPLE = 8
PUSH_PULL_LEVELS = 11


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation), instance_norm(cout), nn.ReLU(True))


class _Stage(nn.Module):
    """One encoder-decoder stage (see module doc); ``mid`` is applied at H/4 (AN, IN or nothing)."""

    def __init__(self, w: int, mid: nn.Module | None) -> None:
        super().__init__()
        self.encoder = nn.Sequential(_block(4, w, k=5), _block(w, 2 * w, stride=2), _block(2 * w, 4 * w, stride=2))
        self.mid = mid if mid is not None else nn.Identity()
        self.context = nn.Sequential(*[_block(4 * w, 4 * w, dilation=d) for d in (2, 4, 8)])
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _block(4 * w, 2 * w),
                                     nn.Upsample(scale_factor=2, mode="nearest"), _block(2 * w, w),
                                     nn.Conv2d(w, 3, 3, 1, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.context(self.mid(self.encoder(x))))


class Inpainter(nn.Module):
    """Two-stage inpainter; ``norm`` is "an" (AN with ``n`` entities in the refine stage) or "in".
    Raises ValueError for another norm or for H/W not multiples of 4 (with Python int shapes)."""

    def __init__(self, width: int = 24, norm: str = "an", n: int = 16) -> None:
        super().__init__()
        if norm not in ("an", "in"):
            raise ValueError(f"norm must be 'an' or 'in', got {norm!r}")
        self.norm = norm
        self.coarse = _Stage(width, None)
        mid = AttentiveNormalization(4 * width, n=n) if norm == "an" else instance_norm(4 * width)
        self.refine = _Stage(width, mid)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = image.shape[-2], image.shape[-1]
        if isinstance(h, int) and (h % SIZE_MULTIPLE or w % SIZE_MULTIPLE):
            raise ValueError(f"Inpainter: H and W must be multiples of {SIZE_MULTIPLE}, got {h}x{w}")
        known = image * (1 - mask)
        coarse = self.coarse(torch.cat([known, mask], 1))
        merged = coarse * mask + known
        refined = self.refine(torch.cat([merged, mask], 1))
        return coarse, refined * mask + known

    def flip_averaged(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Test-time augmentation by horizontal flip: the mean of ``forward(image, mask)[1]`` and the
        mirrored result of the mirrored input. Shapes and ranges as :meth:`forward`'s ``out``
        (B x 3 x H x W, [-1, 1]); known pixels stay exactly the input's (both terms equal them, and
        (a + a) / 2 == a in floating point). Twice the cost of one pass."""
        _, out = self(image, mask)
        _, mirrored = self(image.flip(-1), mask.flip(-1))
        return (out + mirrored.flip(-1)) / 2

    def an_layers(self) -> list[AttentiveNormalization]:
        """The AN modules (for the orthogonality loss); empty for the IN variant."""
        return [m for m in self.modules() if isinstance(m, AttentiveNormalization)]


def push_pull_fill(image: torch.Tensor, mask: torch.Tensor, levels: int = PUSH_PULL_LEVELS) -> torch.Tensor:
    """Mask-aware smooth fill by push-pull (Gortler et al. 1996, "The Lumigraph", section 3.4.1).

    Pull: ``levels`` times, 2 x 2 weighted means of the known colours (``c_l = pool(c w) / pool(w)``, the known
    fraction ``w_l = pool(w)``; ceil mode, so any H x W works). The coarsest level's empty cells take the
    global mean of the known pixels. Push: from coarse to fine, ``c_l <- w_l c_l + (1 - w_l) up(c_{l+1})``
    (bilinear up to level l's size; ``w_0 = 1 - mask``, so known pixels stay exact and holes get a smooth,
    boundary-continuous fill). Exported as AveragePool/Resize/Div/Where (no loops).

    Args:
        image: B x C x H x W, any range (the known pixels are used). mask: B x 1 x H x W in {0, 1}, 1 = hole.
        levels: pyramid depth; holes up to about 2**levels px across are filled from their own border.
    Returns:
        B x C x H x W: ``image`` where ``mask`` is 0, the smooth fill where it is 1. An all-hole image
        gives 0 (no known pixel).
    """
    w = 1 - mask
    cs, ws = [image * w], [w]
    for _ in range(levels):
        cs.append(F.avg_pool2d(cs[-1], 2, ceil_mode=True))
        ws.append(F.avg_pool2d(ws[-1], 2, ceil_mode=True))
    cols = [c / wt.clamp(min=1e-8) for c, wt in zip(cs, ws)]
    mean = cs[-1].sum((2, 3), keepdim=True) / ws[-1].sum((2, 3), keepdim=True).clamp(min=1e-8)
    cur = torch.where(ws[-1] > 0, cols[-1], mean)
    for lvl in range(levels - 1, -1, -1):
        up = F.interpolate(cur, size=cols[lvl].shape[-2:], mode="bilinear", align_corners=False)
        a = ws[lvl].clamp(0.0, 1.0)
        cur = cols[lvl] * a + up * (1 - a)
    return cur


class _Down(nn.Sequential):
    """conv3x3 stride 2 then conv3x3, LeakyReLU(0.2) after each: B x cin x H x W -> B x cout x H/2 x W/2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(cout, cout, 3, 1, 1),
                         nn.LeakyReLU(0.2, True))


class _Up(nn.Module):
    """Bilinear x2, concat the encoder's skip, conv3x3, LeakyReLU: (B x cin x H x W, B x cskip x 2H x 2W) ->
    B x cout x 2H x 2W."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin + cskip, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return F.leaky_relu(self.conv(torch.cat([x, skip], 1)), 0.2)


class _Dilated(nn.Module):
    """Residual dilated block: ``x + conv3x3_d(LeakyReLU(conv3x3_d(x)))`` at constant width."""

    def __init__(self, c: int, d: int) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, 1, d, dilation=d), nn.Conv2d(c, c, 3, 1, d, dilation=d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.leaky_relu(self.a(x), 0.2))


class _GlobalContext(nn.Module):
    """Image-wide context: ``x + conv1x1(LeakyReLU(conv1x1(mean_HW(x))))`` broadcast over H x W (every
    position sees a summary of the whole image, at any size)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.leaky_relu(self.a(x.mean((2, 3), keepdim=True)), 0.2))


_Y = (0.299, 0.587, 0.114)


def lowpass_chroma(rgb: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the BT.601 luma of ``rgb`` (B x 3 x H x W; H, W multiples of ``k``) and low-pass its chroma: the
    colour differences R - Y, G - Y, B - Y are averaged over k x k blocks and upsampled bilinearly, so the
    result has the same luma, and its colour varies only smoothly (issue 30: an adversarial texture term
    must not buy detail with colour stripes; a photo's fine detail is in its luma)."""
    y = _Y[0] * rgb[:, 0:1] + _Y[1] * rgb[:, 1:2] + _Y[2] * rgb[:, 2:3]
    diff = rgb - y
    smooth = F.interpolate(F.avg_pool2d(diff, k), scale_factor=float(k), mode="bilinear", align_corners=False)
    return y + smooth


class FillRefineInpainter(nn.Module):
    """Push-pull fill + full-resolution U-Net refinement with AN (issue 15).

    ``forward(image B x 3 x H x W in [-1, 1], mask B x 1 x H x W in {0, 1}, 1 = hole)``, H and W multiples
    of 8 -> ``(fill, out)``, both B x 3 x H x W in [-1, 1]: ``fill`` = :func:`push_pull_fill` (the
    non-learned coarse stage), ``out = clamp(fill + delta) * mask + image * (1 - mask)`` with ``delta``
    the network's correction (its last conv starts at zero, so training starts from the push-pull fill).

    Network on ``cat(fill, mask)``, width w::

        conv3x3(4, w)                         H      -> skip0
        Down(w, 2w) | Down(2w, 4w)            H/2, H/4 -> skip1, skip2
        Down(4w, 8w)                          H/8
        AN(8w) (or IN(8w): the ablation)      H/8   Attentive Normalization, Wang et al. 2020 (eqs. 1-6)
        dilated residual blocks d = 2, 4, 8, 16, global context, dilated d = 2   (receptive field > 500 px)
        Up(8w, 4w, 4w) | Up(4w, 2w, 2w) | Up(2w, w, w) | conv3x3(w, 3) -> delta
    LeakyReLU(0.2) throughout; no other normalization (the network runs on whole photos at inference and
    on crops in training, so no statistics over H x W except AN's / IN's at H/8). With ``chroma_lowpass`` k
    (issue 30's adversarial stage) the correction's chroma is low-passed over k x k blocks
    (:func:`lowpass_chroma`): texture only in luma.

    Raises ValueError for ``norm`` not "an"/"in", or H/W not multiples of 8 (with Python int shapes).
    """

    arch = "fill-refine"

    def __init__(self, width: int = 16, norm: str = "an", n: int = 16, chroma_lowpass: int = 0) -> None:
        super().__init__()
        if norm not in ("an", "in"):
            raise ValueError(f"norm must be 'an' or 'in', got {norm!r}")
        if chroma_lowpass not in (0, 2, 4, 8):
            raise ValueError(f"chroma_lowpass must be 0, 2, 4 or 8, got {chroma_lowpass}")
        self.norm, w = norm, width
        self.chroma_lowpass = chroma_lowpass
        self.stem = nn.Sequential(nn.Conv2d(4, w, 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.down1, self.down2, self.down3 = _Down(w, 2 * w), _Down(2 * w, 4 * w), _Down(4 * w, 8 * w)
        self.mid = AttentiveNormalization(8 * w, n=n) if norm == "an" else instance_norm(8 * w)
        self.context = nn.Sequential(_Dilated(8 * w, 2), _Dilated(8 * w, 4), _Dilated(8 * w, 8), _Dilated(8 * w, 16),
                                     _GlobalContext(8 * w), _Dilated(8 * w, 2))
        self.up3, self.up2, self.up1 = _Up(8 * w, 4 * w, 4 * w), _Up(4 * w, 2 * w, 2 * w), _Up(2 * w, w, w)
        self.head = nn.Conv2d(w, 3, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = image.shape[-2], image.shape[-1]
        if isinstance(h, int) and (h % FILL_REFINE_MULTIPLE or w % FILL_REFINE_MULTIPLE):
            raise ValueError(f"FillRefineInpainter: H and W must be multiples of {FILL_REFINE_MULTIPLE}, got {h}x{w}")
        fill = push_pull_fill(image, mask)
        s0 = self.stem(torch.cat([fill, mask], 1))
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        x = self.context(self.mid(self.down3(s2)))
        x = self.up1(self.up2(self.up3(x, s2), s1), s0)
        delta = self.head(x)
        if self.chroma_lowpass:
            delta = lowpass_chroma(delta, self.chroma_lowpass)
        out = torch.clamp(fill + delta, -1.0, 1.0)
        return fill, out * mask + image * (1 - mask)

    def flip_averaged(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean of ``forward(image, mask)[1]`` and the mirrored result of the mirrored input (as
        :meth:`Inpainter.flip_averaged`); known pixels stay exact."""
        _, out = self(image, mask)
        _, mirrored = self(image.flip(-1), mask.flip(-1))
        return (out + mirrored.flip(-1)) / 2

    def an_layers(self) -> list[AttentiveNormalization]:
        """The AN modules (for the orthogonality loss); empty for the IN variant."""
        return [m for m in self.modules() if isinstance(m, AttentiveNormalization)]
