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
