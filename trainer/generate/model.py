"""Networks of the generate task.

1. The class-conditional GAN. Class-conditional GAN for Fashion-MNIST (issue 4): an SN-GAN-style ResNet generator with conditional
BN and Attentive Normalization (Wang et al. 2020, section 4) in its third residual block, and a
spectrally normalized ResNet discriminator with a projection head (Miyato and Koyama 2018) and AN in
its first block. ``use_an=False`` gives the "w/o AN" networks of the paper's Table 4 (same otherwise).

Generator: ``z`` B x 128 (float32, N(0, 1)), ``y`` B x 10 class weights (one-hot or a convex mix)
-> B x 1 x 28 x 28 in [-1, 1] (tanh)::

    Linear(128, 7*7*ch) -> ch x 7 x 7
    GBlock(ch, up) 14 x 14 | GBlock(ch, up) 28 x 28 | GBlock(ch) 28 x 28, then AN(ch)
    CBN ReLU conv3x3(ch, 1) tanh

GBlock: CBN ReLU [up2x] conv3x3 CBN ReLU conv3x3, plus shortcut ([up2x] conv1x1).

Discriminator: ``x`` B x 1 x 28 x 28, ``y`` B x 10 -> B scores (hinge loss; higher = real)::

    DBlock1(1, ch, down) 14 x 14, then AN(ch) | DBlock(ch, down) 7 x 7 | DBlock(ch) | DBlock(ch)
    ReLU, sum over H, W -> h (B x ch);  score = Linear(h) + <y @ E, h>  (projection)

With ``aux_classifier=True`` D also has an auxiliary class head ``Linear(ch, 10)`` on the same h (AC-GAN,
Odena et al. 2017; trained on real images only, see ``generate train --aux-weight``): ``forward(x, y,
with_logits=True)`` returns (scores, class logits B x 10). Every conv and linear of D (AN's 1x1 convs and
the class head included) is spectrally normalized.

2. The evaluator. Fashion-MNIST classifier (issue 4's evaluator): a small pre-activation-free ResNet (He et al. 2016)
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
import torch.nn.functional as F
from torch import nn

from ..normalization import AttentiveNormalization, ConditionalBN, MixtureAffineAN

Z_DIM = 128
N_CLASSES = 10


class GBlock(nn.Module):
    """Generator residual block with conditional BN; forward(x, y) -> B x cout x (2H if up) x (2W if up)."""

    def __init__(self, cin: int, cout: int, up: bool, n_classes: int) -> None:
        super().__init__()
        self.up = up
        self.bn1, self.bn2 = ConditionalBN(cin, n_classes), ConditionalBN(cout, n_classes)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.short = nn.Conv2d(cin, cout, 1) if (up or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x, y))
        if self.up:
            h, x = F.interpolate(h, scale_factor=2.0, mode="nearest"), F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.short(x)


class Generator(nn.Module):
    """See the module doc. ``ch`` channels throughout, AN with ``n`` entities when ``use_an``.
    forward(z B x z_dim float32 ~ N(0, 1), y B x n_classes class weights) -> B x 1 x 28 x 28 in [-1, 1]."""

    def __init__(self, ch: int = 64, use_an: bool = True, n: int = 16, n_classes: int = N_CLASSES, z_dim: int = Z_DIM) -> None:
        super().__init__()
        self.ch, self.z_dim, self.n_classes = ch, z_dim, n_classes
        self.linear = nn.Linear(z_dim, 7 * 7 * ch)
        self.blocks = nn.ModuleList([GBlock(ch, ch, True, n_classes), GBlock(ch, ch, True, n_classes), GBlock(ch, ch, False, n_classes)])
        self.an = AttentiveNormalization(ch, n=n) if use_an else None
        self.bn_out = ConditionalBN(ch, n_classes)
        self.conv_out = nn.Conv2d(ch, 1, 3, 1, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.ch, 7, 7)
        for block in self.blocks:
            h = block(h, y)
        if self.an is not None:
            h = self.an(h)
        return torch.tanh(self.conv_out(F.relu(self.bn_out(h, y))))

    def an_layers(self) -> list[AttentiveNormalization]:
        return [m for m in self.modules() if isinstance(m, AttentiveNormalization)]


class DBlock(nn.Module):
    """Discriminator residual block: [ReLU] conv3x3 ReLU conv3x3 [avgpool2], shortcut conv1x1 [avgpool2]."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.short = nn.Conv2d(cin, cout, 1) if (down or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        s = x
        if self.first:  # optimized first block: pool before the shortcut conv
            s = self.short(F.avg_pool2d(s, 2) if self.down else s)
        else:
            s = self.short(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return (F.avg_pool2d(h, 2) if self.down else h) + s


class Discriminator(nn.Module):
    """See the module doc. forward(x B x 1 x 28 x 28, y B x 10) -> B scores (float32, unbounded; hinge loss),
    or with ``with_logits`` (needs ``aux_classifier``) (B scores, B x n_classes class logits).
    Raises ValueError when ``with_logits`` is asked of a D without the class head."""

    def __init__(self, ch: int = 64, use_an: bool = True, n: int = 16, n_classes: int = N_CLASSES,
                 aux_classifier: bool = False) -> None:
        super().__init__()
        self.block1 = DBlock(1, ch, True, True)
        self.an = AttentiveNormalization(ch, n=n) if use_an else None
        self.blocks = nn.Sequential(DBlock(ch, ch, True, False), DBlock(ch, ch, False, False), DBlock(ch, ch, False, False))
        self.linear = nn.Linear(ch, 1)
        self.embed = nn.Linear(n_classes, ch, bias=False)  # projection: E, applied to class weights
        self.classify = nn.Linear(ch, n_classes) if aux_classifier else None  # AC-GAN head (module doc)
        for m in list(self.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.utils.spectral_norm(m)

    def forward(self, x: torch.Tensor, y: torch.Tensor, with_logits: bool = False):
        h = self.block1(x)
        if self.an is not None:
            h = self.an(h)
        h = F.relu(self.blocks(h)).sum((2, 3))
        score = self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)
        if not with_logits:
            return score
        if self.classify is None:
            raise ValueError("this discriminator has no auxiliary class head (aux_classifier=False)")
        return score, self.classify(h)

    def an_layers(self) -> list[AttentiveNormalization]:
        return [m for m in self.modules() if isinstance(m, AttentiveNormalization)]


@torch.no_grad()
def standing_stats(g: Generator, batches: int = 64, batch: int = 100, seed: int = 0) -> None:
    """Re-estimate the BN running statistics of ``g`` as exact averages over ``batches`` batches of random
    z and one-hot classes ("standing statistics", BigGAN appendix C), then leave ``g`` in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    g.train()
    for m in g.an_layers():
        m.eval()  # the layout as at inference (no self-sampling)
    dev = next(g.parameters()).device
    for _ in range(batches):
        z = torch.randn(batch, g.z_dim, generator=gen).to(dev)
        y = F.one_hot(torch.randint(g.n_classes, (batch,), generator=gen), g.n_classes).float().to(dev)
        g(z, y)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    g.eval()


# --- the evaluator: Fashion-MNIST classifier (features for FID, softmax for accuracy / IS) ---

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
