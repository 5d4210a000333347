"""Low-resolution inputs for the x4 upscaler: the clean bicubic downscale and a real-world degradation
pipeline after Wang, Xie, Dong & Shan 2021, "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure
Synthetic Data", section 3.1 (the "second-order" model: blur -> resize -> noise -> JPEG, applied twice with
random parameters), with the ranges narrowed towards what phone and web photos have (our evaluation's
degraded inputs are JPEG 50 + Gaussian noise 5/255).

Every function works on H x W x 3 uint8 RGB numpy arrays with PIL (the same resampling the evaluation and
the service's baselines use) and draws its parameters from a ``numpy.random.Generator``, so a seed gives
the same pairs.

* :func:`bicubic_down`: PIL bicubic (antialiased, like MATLAB's ``imresize``) to exactly ``(H/4, W/4)``.
* :func:`eval_degraded`: the evaluation's degraded input: bicubic x4 down, JPEG quality 50, then Gaussian
  noise sigma 5/255 (issue 33's order), rounded to uint8.
* :func:`real_world`: training degradation: per stage (2nd with p 0.8) Gaussian blur (sigma U(0.2, 2.0), then
  U(0.2, 1.2); p 0.7 / 0.5), a resize (random filter of box / bilinear / bicubic / Lanczos; 1st stage to
  U(0.35, 1.0) of the HR size, 2nd to the final H/4), Gaussian noise (sigma U(1, 15)/255 then U(1, 10)/255,
  gray with p 0.4; p 0.8) and JPEG (quality U(35, 95); p 0.8), noise and JPEG in a random order.
* :func:`light`: a one-stage degradation of the kind web and phone photos carry (the "first-order" model the
  Real-ESRGAN paper starts from, section 3.1; BSRGAN, Zhang et al. 2021, likewise mixes shuffled single
  degradations): a x4 resize (random filter), then with p 0.9 JPEG (quality U(30, 90)) and with p 0.9 Gaussian
  noise (sigma U(1, 10)/255, gray with p 0.2), in a random order. Training mixes it in with ``--light-share``.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

SCALE = 4
_FILTERS = (Image.BOX, Image.BILINEAR, Image.BICUBIC, Image.LANCZOS)


def bicubic_down(hr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """H x W x 3 uint8 -> H/scale x W/scale x 3 uint8 (PIL bicubic, antialiased). Raises ValueError when H or W
    is not a multiple of ``scale``."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"bicubic_down: {w}x{h} is not a multiple of {scale}")
    return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at ``quality`` (1-95, PIL/libjpeg, 4:2:0 subsampling): H x W x 3 uint8 -> same."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator, gray: bool = False) -> np.ndarray:
    """Add N(0, sigma^2) noise (``sigma`` in 0-255 units; one channel for all three when ``gray``), round and
    clip: H x W x 3 uint8 -> same."""
    shape = img.shape[:2] + (1,) if gray else img.shape
    return np.clip(np.round(img.astype(np.float32) + rng.normal(0.0, sigma, shape)), 0, 255).astype(np.uint8)


def eval_degraded(hr: np.ndarray, seed: int = 0) -> np.ndarray:
    """The evaluation's degraded LR of an HR photo: bicubic x4 down, JPEG quality 50, Gaussian noise sigma 5/255
    (drawn from ``seed``). H x W x 3 uint8 (multiples of 4) -> H/4 x W/4 x 3 uint8."""
    return gaussian_noise(jpeg(bicubic_down(hr), 50), 5.0, np.random.default_rng(seed))


def _stage(img: np.ndarray, rng: np.random.Generator, size: tuple[int, int], blur: tuple[float, float, float],
           noise_max: float) -> np.ndarray:
    if rng.random() < blur[0]:
        img = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(float(rng.uniform(blur[1], blur[2])))))
    img = np.asarray(Image.fromarray(img).resize(size, _FILTERS[rng.integers(len(_FILTERS))]))
    ops = []
    if rng.random() < 0.8:
        sigma, gray = float(rng.uniform(1.0, noise_max)), bool(rng.random() < 0.4)
        ops.append(lambda a: gaussian_noise(a, sigma, rng, gray))
    if rng.random() < 0.8:
        q = int(rng.integers(35, 96))
        ops.append(lambda a: jpeg(a, q))
    if rng.random() < 0.5:
        ops.reverse()
    for op in ops:
        img = op(img)
    return img


def real_world(hr: np.ndarray, rng: np.random.Generator, scale: int = SCALE) -> np.ndarray:
    """A randomly degraded LR of ``hr`` (module docstring): H x W x 3 uint8 (multiples of ``scale``) ->
    H/scale x W/scale x 3 uint8."""
    h, w = hr.shape[:2]
    lr_size = (w // scale, h // scale)
    if rng.random() < 0.8:
        u = float(rng.uniform(0.35, 1.0))
        mid = (max(lr_size[0], round(w * u)), max(lr_size[1], round(h * u)))
        img = _stage(hr, rng, mid, (0.7, 0.2, 2.0), 15.0)
        return _stage(img, rng, lr_size, (0.5, 0.2, 1.2), 10.0)
    return _stage(hr, rng, lr_size, (0.7, 0.2, 2.0), 15.0)


def light(hr: np.ndarray, rng: np.random.Generator, scale: int = SCALE) -> np.ndarray:
    """A one-stage degraded LR of ``hr`` (module docstring): H x W x 3 uint8 (multiples of ``scale``) ->
    H/scale x W/scale x 3 uint8."""
    h, w = hr.shape[:2]
    img = np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), _FILTERS[rng.integers(len(_FILTERS))]))
    ops = []
    if rng.random() < 0.9:
        q = int(rng.integers(30, 91))
        ops.append(lambda a: jpeg(a, q))
    if rng.random() < 0.9:
        sigma, gray = float(rng.uniform(1.0, 10.0)), bool(rng.random() < 0.2)
        ops.append(lambda a: gaussian_noise(a, sigma, rng, gray))
    if rng.random() < 0.5:
        ops.reverse()
    for op in ops:
        img = op(img)
    return img


def make_lr(hr: np.ndarray, rng: np.random.Generator, clean_share: float, light_share: float = 0.0) -> np.ndarray:
    """Training LR of one HR crop: with probability ``clean_share`` :func:`bicubic_down`, with probability
    ``light_share`` :func:`light`, else :func:`real_world`. Raises ValueError when the shares sum above 1."""
    if clean_share + light_share > 1.0:
        raise ValueError(f"make_lr: clean share {clean_share} + light share {light_share} > 1")
    u = rng.random()
    if u < clean_share:
        return bicubic_down(hr)
    if u < clean_share + light_share:
        return light(hr, rng)
    return real_world(hr, rng)
