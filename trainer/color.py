"""Colour conversions shared by the trainer, its evaluation and (mirrored) the service.

Convention (ITU-R BT.601 full range, as in JPEG/JFIF), on values in [0, 1]:
``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb = (B - Y) / 1.772``, ``Cr = (R - Y) / 1.402``.
Networks see ``2 Y - 1`` in [-1, 1] and predict ``2 Cb, 2 Cr`` in [-1, 1]; because the map is
linear, ``R' = Y' + 1.402 Cr'`` etc. also holds on the [-1, 1] scale.
"""
from __future__ import annotations

import numpy as np
import torch

LUMA = (0.299, 0.587, 0.114)


def rgb_to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma. rgb: B x 3 x H x W float in [-1, 1] -> B x 1 x H x W in [-1, 1]."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def rgb_to_chroma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 chroma on the [-1, 1] scale. rgb: B x 3 x H x W in [-1, 1] -> B x 2 x H x W (Cb', Cr') in [-1, 1]."""
    y = rgb_to_luma(rgb)
    return torch.cat([(rgb[:, 2:3] - y) / 1.772, (rgb[:, 0:1] - y) / 1.402], dim=1)


def ycbcr_to_rgb(y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Inverse of the above, clamped to [-1, 1].

    Args:
        y: B x 1 x H x W luma in [-1, 1].
        chroma: B x 2 x H x W (Cb', Cr') in [-1, 1].
    Returns:
        B x 3 x H x W RGB in [-1, 1] (exported to ONNX as Mul/Add/Concat/Clip).
    """
    cb, cr = chroma[:, 0:1], chroma[:, 1:2]
    r = y + 1.402 * cr
    g = y - (0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr
    b = y + 1.772 * cb
    return torch.clamp(torch.cat([r, g, b], dim=1), -1.0, 1.0)


def luma_u8(rgb_u8: np.ndarray) -> np.ndarray:
    """BT.601 luma of an H x W x 3 uint8 image, rounded to H x W uint8 (what a gray photo holds)."""
    y = rgb_u8[..., :3].astype(np.float32) @ np.array(LUMA, dtype=np.float32)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def to_signed(u8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return u8.astype(np.float32) / 127.5 - 1.0


def to_u8(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounded and clamped (as the service does)."""
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


# --- CIE L*a*b* (D65) for the classification colorizer (Zhang, Isola & Efros 2016) -------------------
# sRGB primaries, D65 white (the matrices and constants of scikit-image's rgb2lab / lab2rgb), as torch
# ops that trace to ONNX (Conv 1x1, Pow, Where, Clip) so the decoder can run inside the exported graph.

_RGB2XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_XYZ2RGB = ((3.24048134, -1.53715152, -0.49853633), (-0.96925495, 1.87599, 0.04155593),
            (0.05564664, -0.20404134, 1.05731107))
WHITE_D65 = (0.95047, 1.0, 1.08883)


def _mix(x: torch.Tensor, m: tuple) -> torch.Tensor:
    """3 x 3 colour matrix on the channels of B x 3 x H x W (a 1 x 1 convolution)."""
    return torch.nn.functional.conv2d(x, torch.tensor(m, dtype=x.dtype, device=x.device)[:, :, None, None])


def srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function inverse (IEC 61966-2-1), elementwise on values in [0, 1]."""
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function, elementwise on linear values (clamped to [0, 1] first)."""
    c = c.clamp(0.0, 1.0)
    return torch.where(c <= 0.0031308, 12.92 * c, 1.055 * c.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0.008856, t.clamp(min=0.008856) ** (1 / 3), 7.787 * t + 16 / 116)


def _f_inv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0.2068966, t.clamp(min=0.2068966) ** 3, (t - 16 / 116) / 7.787)


def rgb_to_lab(rgb01: torch.Tensor) -> torch.Tensor:
    """sRGB B x 3 x H x W in [0, 1] -> CIE L*a*b* B x 3 x H x W (L in [0, 100], a and b about [-110, 110])."""
    xyz = _mix(srgb_to_linear(rgb01), _RGB2XYZ)
    fx, fy, fz = (_f(xyz[:, i:i + 1] / WHITE_D65[i]) for i in range(3))
    return torch.cat([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* B x 3 x H x W -> sRGB B x 3 x H x W in [0, 1] (out-of-gamut colours clipped)."""
    fy = (lab[:, 0:1] + 16) / 116
    fx, fz = fy + lab[:, 1:2] / 500, fy - lab[:, 2:3] / 200
    xyz = torch.cat([_f_inv(fx) * WHITE_D65[0], _f_inv(fy) * WHITE_D65[1], _f_inv(fz) * WHITE_D65[2]], dim=1)
    return linear_to_srgb(_mix(xyz, _XYZ2RGB))


def luma_to_lightness(y: torch.Tensor) -> torch.Tensor:
    """CIE L* (B x 1 x H x W, [0, 100]) of a gray pixel whose R = G = B = the BT.601 luma ``y`` in [-1, 1]
    (a gray pixel's relative luminance is its linearised value)."""
    return 116 * _f(srgb_to_linear((y + 1) * 0.5)) - 16


def ab_onto_luma(y: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The colorizers' decoding (Zhang, Isola & Efros 2016, section 2: L* from the input, ab predicted): L* from
    the BT.601 luma ``y`` (B x 1 x H x W in [-1, 1], :func:`luma_to_lightness`) with CIE a*b* ``ab`` (B x 2 x H x W,
    CIE units, same H x W), Lab -> sRGB, then that colour's chroma kept with ``y`` (:func:`ycbcr_to_rgb_in_gamut`):
    B x 3 x H x W RGB in [-1, 1] whose BT.601 luma is ``y`` exactly."""
    rgb = lab_to_rgb(torch.cat([luma_to_lightness(y), ab], dim=1)) * 2 - 1
    return ycbcr_to_rgb_in_gamut(y, rgb_to_chroma(rgb))


def ycbcr_to_rgb_in_gamut(y: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Like :func:`ycbcr_to_rgb`, but a colour that falls outside the RGB cube is desaturated towards its
    gray (chroma scaled by the largest s in [0, 1] that keeps R, G and B in [-1, 1]) instead of clipped,
    so the BT.601 luma of the result equals ``y`` exactly (up to float rounding) and the hue is kept.

    Args:
        y: B x 1 x H x W luma in [-1, 1]; chroma: B x 2 x H x W (Cb', Cr').
    Returns:
        B x 3 x H x W RGB in [-1, 1] (exported as Mul/Add/Div/Where/Min/Clip).
    """
    cb, cr = chroma[:, 0:1], chroma[:, 1:2]
    d = torch.cat([1.402 * cr, -(0.114 * 1.772 / 0.587) * cb - (0.299 * 1.402 / 0.587) * cr, 1.772 * cb], dim=1)
    eps, big = 1e-6, 1e6
    s_up = torch.where(d > eps, (1.0 - y) / d.clamp(min=eps), torch.full_like(d, big))
    s_down = torch.where(d < -eps, (-1.0 - y) / d.clamp(max=-eps), torch.full_like(d, big))
    s = torch.minimum(s_up, s_down).amin(dim=1, keepdim=True).clamp(0.0, 1.0)
    return torch.clamp(y + s * d, -1.0, 1.0)
