"""Issue 30's texture critic: the SN-PatchGAN on luma, its hinge step, the detail ratio and object masks."""
import os

import numpy as np
import pytest
import torch

from trainer.inpaint.adversarial import (SNPatchGAN, critic_input, detail_ratio, hinge_step, hole_patches, load_stamps,
                                         luma, stamp_masks)
from trainer.inpaint.model import FillRefineInpainter


def test_critic_shapes_and_luma_only():
    d = SNPatchGAN(2, ndf=8)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    m = torch.zeros(2, 1, 64, 96)
    logits, feats = d(critic_input(x, m))
    assert logits.shape == (2, 1, 2, 3) and len(feats) == 5
    # two images with the same luma but different chroma look the same to the critic
    y = luma(x)
    gray = y.expand(-1, 3, -1, -1)
    assert torch.allclose(critic_input(gray, m), critic_input(x, m), atol=1e-6)
    assert torch.allclose(luma(gray), y, atol=1e-6)


def test_hole_patches_cover_hole_and_neighbours():
    m = torch.zeros(1, 1, 64, 64)
    m[..., 0:4, 0:4] = 1
    w = hole_patches(m, (4, 4))
    assert w[0, 0, 0, 0] == 1 and w[0, 0, 1, 1] == 1 and w[0, 0, 3, 3] == 0


def test_hinge_step_updates_critic_and_leaves_its_grads_to_the_generator_backward():
    torch.manual_seed(0)
    g = FillRefineInpainter(width=8, norm="an", n=4)
    d = SNPatchGAN(2, ndf=8)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    y = torch.rand(2, 3, 64, 64) * 2 - 1
    m = torch.zeros(2, 1, 64, 64)
    m[..., 16:40, 16:40] = 1
    _, out = g(y, m)
    before = [p.detach().clone() for p in d.parameters()]
    loss_d, loss_g, loss_fm = hinge_step(d, opt_d, y, out, m, fm_weight=1.0)
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, d.parameters())), "critic did not step"
    d_grads = [None if p.grad is None else p.grad.clone() for p in d.parameters()]
    (loss_g + loss_fm).backward()
    for a, p in zip(d_grads, d.parameters()):
        assert (a is None and p.grad is None) or torch.equal(a, p.grad)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert loss_fm.item() > 0 and float(loss_d) >= 0


def test_detail_ratio_truth_is_one_flat_is_zero():
    torch.manual_seed(1)
    y = torch.rand(2, 3, 48, 48) * 2 - 1
    m = torch.zeros(2, 1, 48, 48)
    m[..., 10:30, 12:34] = 1
    assert detail_ratio(y, y, m) == pytest.approx(1.0)
    flat = y * (1 - m) + m * 0.1
    assert detail_ratio(flat, y, m) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(detail_ratio(y, y, torch.zeros_like(m)))


@pytest.mark.skipif(not os.path.isdir("/usr/share/tuxpaint/stamps"), reason="tuxpaint-stamps-default not installed")
def test_object_masks_are_seeded_and_never_empty():
    stamps = load_stamps(limit=60)
    assert len(stamps) > 10
    a = stamp_masks(128, np.random.default_rng(3), stamps)
    b = stamp_masks(128, np.random.default_rng(3), stamps)
    assert np.array_equal(a, b)
    for s in range(20):
        m = stamp_masks(128, np.random.default_rng(s), stamps)
        assert m.shape == (128, 128) and 0 < m.mean() < 0.5


def test_stamp_masks_need_stamps():
    with pytest.raises(ValueError):
        stamp_masks(64, np.random.default_rng(0), [])


def test_lowpass_chroma_keeps_luma_and_smooths_colour():
    from trainer.inpaint.model import FillRefineInpainter, lowpass_chroma
    torch.manual_seed(2)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    y = lowpass_chroma(x, 8)
    assert torch.allclose(luma(y), luma(x), atol=1e-5)
    hf = lambda t: (t - luma(t))[..., :, 1:].sub((t - luma(t))[..., :, :-1]).abs().mean()
    assert hf(y) < 0.25 * hf(x)
    # in the network: known pixels exact, and the option is saved for build_model
    net = FillRefineInpainter(width=8, norm="an", n=4, chroma_lowpass=8).eval()
    torch.nn.init.normal_(net.head.weight, std=0.1)
    m = torch.zeros(2, 1, 32, 48)
    m[..., 8:24, 8:40] = 1
    _, out = net(x, m)
    assert torch.equal(out * (1 - m), x * (1 - m))
    with pytest.raises(ValueError):
        FillRefineInpainter(width=8, chroma_lowpass=3)
