"""Translator: the CycleGAN/pix2pix ResNet generator with PONO-MS (Li et al. 2019, section 3.1, Fig. 4 left).

Layout (Johnson et al. / CycleGAN ``ResnetGenerator``), widths for ``ngf = w``::

    stem  : ReflectionPad(3) Conv7x7(in, w)  IN ReLU                         H   x W
    down1 : Conv3x3/2(w, 2w)   [PONO -> mu1, sigma1]  IN ReLU                H/2 x W/2
    down2 : Conv3x3/2(2w, 4w)  [PONO -> mu2, sigma2]  IN ReLU                H/4 x W/4
    blocks: n_blocks x ResidualBlock(4w) (reflect pad, conv3x3, IN, ReLU, conv3x3, IN)
    up1   : [MS(mu2, sigma2)] ConvT3x3/2(4w, 2w) IN ReLU                     H/2 x W/2
    up2   : [MS(mu1, sigma1)] ConvT3x3/2(2w, w)  IN ReLU                     H   x W
    head  : ReflectionPad(3) Conv7x7(w, out) tanh

PONO sits right after each downsampling conv and MS right before the matching upsampling conv,
as in the paper's CycleGAN variant. With ``pono_ms=False`` the bracketed parts are removed and the
network is the plain IN baseline (the paper's Table 3/4 ablation).

Colorization head (``task="colorize"``): the 7x7 conv + tanh predicts chroma (Cb', Cr') and a fixed,
parameter-free BT.601 layer (:func:`trainer.color.ycbcr_to_rgb`) recombines it with the input luma,
so the output's luma is the input's and a zero prediction is exactly the gray copy.

Classification head (``head="classify"``, Zhang, Isola & Efros 2016; :mod:`trainer.colorize.quantize`):
after ``up1`` (preceded by MS(mu2)) the H/2 features get MS(mu1) and a small head
(Conv3x3(2w, 2w) IN ReLU, Conv1x1(2w, Q)) that predicts a distribution over the Q in-gamut ab bins at
H/2 (``logits``). ``forward`` decodes it by the annealed mean (T = 0.38) to ab at H/2, upsamples ab
bilinearly to H x W, takes L* from the input luma, converts Lab -> sRGB and keeps that colour's
chroma with the input's luma (the BT.601 layer above), so the output's luma is the input's here too.
``up2`` and the 7x7 head are not used by this head (the distribution is predicted at H/2, as the paper
predicts at a reduced resolution, which keeps the Q-channel maps small for large photos).

Input: B x 1 x H x W float32 luma in [-1, 1] (H, W multiples of 4). Output: B x 3 x H x W RGB in [-1, 1].
"""
from __future__ import annotations

import torch
from torch import nn

import torch.nn.functional as F

from ..color import ab_onto_luma, ycbcr_to_rgb
from ..normalization import PONO, MomentShortcut, instance_norm
from .quantize import TEMPERATURE, annealed_mean, gamut_bins

SIZE_MULTIPLE = 4


class ResidualBlock(nn.Module):
    """ResNet block at constant width: x + IN(conv(ReLU(IN(conv(x))))), reflect padding. B x C x H x W -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), instance_norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def check_chroma_gain(gain: float) -> float:
    """The classify head's chroma gain g (a float, unitless factor on the decoded ab), returned unchanged.
    Raises ValueError for g outside [0, 2] (0 = the gray copy, 1 = Zhang et al.'s decoding, 2 = twice as
    saturated). The one check behind ``Translator(chroma_gain=...)``, ``load_checkpoint`` and
    ``--chroma-gain``."""
    if not 0.0 <= gain <= 2.0:
        raise ValueError(f"chroma gain must be in [0, 2], got {gain}")
    return gain


class Translator(nn.Module):
    """ResNet generator with optional PONO-MS; see the module docstring for the layout.

    Args:
        in_channels: 1 for colorization (luma).
        ngf: base width w (channels after the stem).
        n_blocks: number of residual blocks at H/4.
        pono_ms: True for PONO-MS, False for the IN-only ablation.
        task: "colorize" (chroma head + fixed YCbCr->RGB) or "rgb" (tanh RGB head).
        head: "l1" (regressed chroma, the 7x7 head) or "classify" (ab distribution + annealed mean;
            colorize only).
        temperature: the annealed mean's T (classify head).
        chroma_gain: factor g on the decoded ab (classify head; 1 = Zhang et al.'s decoding unchanged, 0 = the
            gray copy). A calibration of saturation chosen on the validation photos (``colorize evaluate
            --split val --chroma-gain``); exported into the graph as one Mul.
    forward(x): B x in_channels x H x W in [-1, 1], H and W multiples of 4 -> B x 3 x H x W in [-1, 1].
    ``logits(x)`` (classify head): B x Q x H/2 x W/2 float32 logits over :attr:`ab_bins` (Q x 2, CIE units).
    Raises ValueError for H or W not a multiple of 4 (when traced with Python ints), an unknown task or
    head, or the classify head with task "rgb".
    """

    def __init__(self, in_channels: int = 1, ngf: int = 32, n_blocks: int = 6, pono_ms: bool = True,
                 task: str = "colorize", head: str = "l1", temperature: float = TEMPERATURE,
                 chroma_gain: float = 1.0) -> None:
        super().__init__()
        if task not in ("colorize", "rgb"):
            raise ValueError(f"unknown task {task!r}")
        if head not in ("l1", "classify") or (head == "classify" and task != "colorize"):
            raise ValueError(f"unknown head {head!r} for task {task!r}")
        self.task, self.pono_ms, self.head_kind, self.temperature = task, pono_ms, head, temperature
        self.chroma_gain = check_chroma_gain(chroma_gain)
        w = ngf
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, w, 7), instance_norm(w), nn.ReLU(True))
        self.down1 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.down1_post = nn.Sequential(instance_norm(2 * w), nn.ReLU(True))
        self.down2 = nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1)
        self.down2_post = nn.Sequential(instance_norm(4 * w), nn.ReLU(True))
        self.blocks = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(n_blocks)])
        self.up1 = nn.Sequential(nn.ConvTranspose2d(4 * w, 2 * w, 3, stride=2, padding=1, output_padding=1),
                                 instance_norm(2 * w), nn.ReLU(True))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1),
                                 instance_norm(w), nn.ReLU(True))
        out = 2 if task == "colorize" else 3
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(w, out, 7), nn.Tanh())
        if task == "colorize":
            # Zero chroma at initialisation: training starts from the gray copy and only improves on it.
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)
        self.pono = PONO()
        self.moment_shortcut = MomentShortcut()
        if head == "classify":
            del self.up2, self.head
            bins = torch.from_numpy(gamut_bins())
            self.register_buffer("ab_bins", bins)
            self.cls_head = nn.Sequential(nn.Conv2d(2 * w, 2 * w, 3, padding=1), instance_norm(2 * w), nn.ReLU(True),
                                          nn.Conv2d(2 * w, len(bins), 1))

    def _check(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2], x.shape[-1]
        if isinstance(h, int) and (h % SIZE_MULTIPLE or w % SIZE_MULTIPLE):
            raise ValueError(f"Translator: H and W must be multiples of {SIZE_MULTIPLE}, got {h}x{w}")

    def features_half(self, x: torch.Tensor) -> torch.Tensor:
        """The shared body up to H/2: stem, the two downsampling convs (PONO after each), the residual
        blocks, MS(mu2) + ``up1``, then MS(mu1). B x 1 x H x W in [-1, 1] -> B x 2w x H/2 x W/2."""
        self._check(x)
        f = self.stem(x)
        f = self.down1(f)
        if self.pono_ms:
            f, mu1, sigma1 = self.pono(f)
        f = self.down1_post(f)
        f = self.down2(f)
        if self.pono_ms:
            f, mu2, sigma2 = self.pono(f)
        f = self.down2_post(f)
        f = self.blocks(f)
        if self.pono_ms:
            f = self.moment_shortcut(f, mu2, sigma2)
        f = self.up1(f)
        if self.pono_ms:
            f = self.moment_shortcut(f, mu1, sigma1)
        return f

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Classify head: B x 1 x H x W luma in [-1, 1] -> B x Q x H/2 x W/2 logits over ``ab_bins``."""
        return self.cls_head(self.features_half(x))

    def decode(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Annealed-mean decoding (eq. 5) of H/2 logits, ab times :attr:`chroma_gain`, then Lab -> RGB with the
        input's L* and luma: x B x 1 x H x W in [-1, 1], logits B x Q x H/2 x W/2 -> B x 3 x H x W RGB in [-1, 1]."""
        ab = annealed_mean(logits, self.ab_bins, self.temperature)
        if self.chroma_gain != 1.0:
            ab = ab * self.chroma_gain
        return ab_onto_luma(x, F.interpolate(ab, scale_factor=2.0, mode="bilinear", align_corners=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_kind == "classify":
            return self.decode(x, self.logits(x))
        out = self.head(self.up2(self.features_half(x)))
        if self.task == "colorize":
            return ycbcr_to_rgb(x[:, 0:1], out)
        return out
