"""Texture transfer (trainer/inpaint/texture.py, issue 30): known pixels exact, the hole gets the photo's texture
back while the fill's low band is kept, no source -> the fill unchanged, any size, export keeps the settings."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer.inpaint.adversarial import detail_ratio
from trainer.inpaint.texture import TextureTransfer, gaussian_kernel, texture_params


def _textured(h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    """A 1 x 3 x h x w 'photo' in [-1, 1]: a colour ramp plus fine random texture (std ~0.15)."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(-0.5, 0.5, w).view(1, 1, 1, w).expand(1, 3, h, w)
    return (ramp + 0.15 * torch.randn(1, 1, h, w, generator=g)).clamp(-1, 1)


def _box(h: int, w: int, y0: int, x0: int, bh: int, bw: int) -> torch.Tensor:
    m = torch.zeros(1, 1, h, w)
    m[..., y0:y0 + bh, x0:x0 + bw] = 1
    return m


def test_gaussian_kernel_sums_to_one_with_radius_3_sigma():
    k = gaussian_kernel(1.5)
    assert k.numel() == 2 * 5 + 1 and abs(float(k.sum()) - 1) < 1e-6 and int(k.argmax()) == 5


def test_known_pixels_exact_and_texture_restored_in_the_hole():
    photo = _textured()
    mask = _box(96, 128, 32, 48, 32, 32)
    tt = TextureTransfer(**texture_params()).eval()
    fill = tt.blur(photo) * mask + photo * (1 - mask)       # an ideal smooth fill: the right low band, no texture
    out = tt(fill, mask)
    assert torch.equal(out[mask.expand_as(out) == 0], fill[mask.expand_as(fill) == 0])
    before, after = detail_ratio(fill, photo, mask), detail_ratio(out, photo, mask)
    assert before < 0.35 and after > 0.45, (before, after)
    # the low band of the fill is kept: blurring the output gives (nearly) the fill's blur inside the hole
    inner = 1 - F.max_pool2d(1 - mask, 9, 1, 4)              # the hole eroded by 4 px
    diff = ((tt.blur(out) - tt.blur(fill)).abs() * inner).sum() / (inner.sum() * 3)
    assert float(diff) < 0.03, float(diff)


def test_texture_is_borrowed_from_nearby_blocks_not_invented():
    """Every pasted value comes from the photo's high band: with gain 1 and no ramp/overlap, each hole block of
    the output minus the fill equals some known block of the high band."""
    photo = _textured(64, 64, seed=3)
    mask = _box(64, 64, 16, 16, 16, 16)
    tt = TextureTransfer(block=16, sigma=1.5, gain=1.0, overlap=False, ramp=0, search=3).eval()
    fill = tt.blur(photo) * mask + photo * (1 - mask)
    pasted = (tt(fill, mask) - fill)[0, :, 16:32, 16:32]
    high = fill - tt.blur(fill)
    sources = [high[0, :, y:y + 16, x:x + 16] for y in range(0, 64, 16) for x in range(0, 64, 16)]
    assert float(pasted.abs().max()) > 0.05
    # (the 'photo' stays inside [-1, 1] after the paste, so the output's clamp does not act here)
    assert min(float((pasted - s).abs().max()) for s in sources) < 1e-5


def test_no_source_returns_the_fill_and_any_size_works():
    photo = _textured(40, 56)
    tt = TextureTransfer(**texture_params()).eval()
    full = torch.ones(1, 1, 40, 56)
    assert torch.equal(tt(photo, full), photo.clamp(-1, 1))   # everything is hole: nothing to borrow
    mask = _box(40, 56, 8, 8, 12, 20)                          # 40 x 56: not multiples of the 16 px block
    out = tt(photo, mask)
    assert out.shape == photo.shape and torch.equal(out[..., :8, :], photo[..., :8, :])
    # batches are independent
    both = tt(torch.cat([photo, photo.flip(-1)]), torch.cat([mask, mask.flip(-1)]))
    assert torch.allclose(both[:1], out, atol=1e-6)


def test_bad_block_is_refused():
    with pytest.raises(ValueError):
        TextureTransfer(block=7)


def test_export_with_texture_writes_its_settings(tmp_path):
    """``inpaint export --texture`` appends the transfer: the manifest records the settings and the fixture's
    output differs from the same weights without it only inside the hole."""
    from trainer.inpaint.model import FillRefineInpainter
    from trainer.__main__ import main as cli
    if not os.path.exists("/usr/share/doc/opencv-doc"):
        pytest.skip("photo packages not installed")
    net = FillRefineInpainter(width=8, n=4)
    args = {"arch": "fill-refine", "norm": "an", "width": 8, "entities": 4, "lambda_o": 1e-4, "photos": "opencv",
            "batch": 2, "crop": 64, "seed": 0, "lr": 1e-4, "ema": 0.999, "device": "cpu", "threads": 1, "chroma_lowpass": 0}
    torch.save({"model": net.state_dict(), "args": args, "step": 1}, tmp_path / "best.pt")
    outs = {}
    for flag in ([], ["--texture"]):
        d = tmp_path / ("tex" if flag else "plain")
        assert cli(["inpaint", "export", str(tmp_path / "best.pt"), "--out-dir", str(d), "--version", "0.0.1", *flag]) == 0
        outs[bool(flag)] = np.fromfile(d / "fixture" / "output.f32", "<f4")
        manifest = json.load(open(d / "manifest.json"))
        assert ("texture" in manifest["architecture"]) == bool(flag)
    assert manifest["architecture"]["texture"] == texture_params()
    mask = np.fromfile(tmp_path / "tex" / "fixture" / "mask.f32", "<f4").reshape(1, 1, 64, 80)
    hole = np.broadcast_to(mask, (1, 3, 64, 80)).reshape(-1) > 0
    assert np.array_equal(outs[True][~hole], outs[False][~hole])
    assert np.abs(outs[True][hole] - outs[False][hole]).max() > 1e-3
