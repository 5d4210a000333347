"""Image-quality metrics on uint8 images shared by the colorizer's and the inpainter's evaluations:
PSNR (dB, data range 255) and SSIM (Wang et al. 2004; Gaussian window sigma 1.5, K1 0.01, K2 0.03)
through scikit-image."""
from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images of equal shape (data range 255)."""
    return float(peak_signal_noise_ratio(a, b, data_range=255))


def ssim_u8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two H x W x 3 uint8 images (Gaussian sigma 1.5, data range 255, mean over channels)."""
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def y_channel(rgb_u8: np.ndarray) -> np.ndarray:
    """The Y of YCbCr as super-resolution papers compute it (MATLAB ``rgb2ycbcr``, BT.601 studio range):
    ``16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for H x W x 3 uint8 RGB -> H x W float64 in [16, 235]."""
    x = rgb_u8.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def sr_scores(pred: np.ndarray, true: np.ndarray, border: int) -> tuple[float, float]:
    """The super-resolution protocol (EDSR, SwinIR): (PSNR dB, SSIM) on the Y channel (:func:`y_channel`, peak
    255), ``border`` pixels cropped on each side (the scale). Both H x W x 3 uint8 of equal shape. Raises
    ValueError for different shapes."""
    if pred.shape != true.shape:
        raise ValueError(f"sr_scores: shapes differ {pred.shape} vs {true.shape}")
    a, b = y_channel(pred), y_channel(true)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(np.mean((a - b) ** 2))
    p = float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)
    s = float(structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False))
    return p, s
