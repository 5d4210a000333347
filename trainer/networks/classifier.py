"""Fashion-MNIST classifier (issue 4's evaluator): a small pre-activation-free ResNet (He et al. 2016)
with BN, or with the mixture-of-affine AN of Li et al. 2019 in the "lightweight deployment" of their
Fig. 1(c): AN replaces the BN after the first 3x3 conv of every residual block, the other BNs stay.

Input: B x 1 x 28 x 28 float32 in [-1, 1]. Layout::

    conv3x3(1, w) BN ReLU                                   28 x 28
    2 x BasicBlock(w)         | 2 x BasicBlock(2w, stride 2) | 2 x BasicBlock(4w, stride 2)   -> 7 x 7
    global average pool -> features (B x 4w) -> FC(4w, 10) -> logits

``features(x)`` (B x 4w, after the GAP) is the embedding used for FID / intra-FID.
"""
from __future__ import annotations

import torch
from torch import nn

from ..normalization import MixtureAffineAN


def _norm(kind: str, c: int, k: int) -> nn.Module:
    return MixtureAffineAN(c, k=k) if kind == "an" else nn.BatchNorm2d(c)


class BasicBlock(nn.Module):
    """conv3x3 - norm1 (AN or BN) - ReLU - conv3x3 - BN, plus the (1x1-projected when needed) shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str, k: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = _norm(norm, cout, k)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(h)) + self.short(x))


class Classifier(nn.Module):
    """Small ResNet for 28 x 28 gray images; ``norm`` "bn" or "an" (mixture AN with ``k`` components).
    forward(x B x 1 x 28 x 28) -> logits B x 10. Raises ValueError for another norm."""

    def __init__(self, width: int = 32, norm: str = "bn", k: int = 5, n_classes: int = 10) -> None:
        super().__init__()
        if norm not in ("bn", "an"):
            raise ValueError(f"norm must be 'bn' or 'an', got {norm!r}")
        self.norm = norm
        w = width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True))
        blocks = []
        for cin, cout, stride in [(w, w, 1), (w, w, 1), (w, 2 * w, 2), (2 * w, 2 * w, 1), (2 * w, 4 * w, 2), (4 * w, 4 * w, 1)]:
            blocks.append(BasicBlock(cin, cout, stride, norm, k))
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(4 * w, n_classes)
        self.feature_dim = 4 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """GAP features B x 4w (the FID embedding)."""
        return self.blocks(self.stem(x)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
