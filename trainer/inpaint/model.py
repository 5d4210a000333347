"""Inpainter: two-stage coarse-to-refine encoder-decoder (after Yu et al. 2018, "Generative Image
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
from torch import nn

from ..normalization import AttentiveNormalization, instance_norm

SIZE_MULTIPLE = 4


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
