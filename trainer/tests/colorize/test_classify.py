"""The classification colorizer (Zhang, Isola & Efros 2016): Lab conversion, ab quantization, soft-encoding,
class rebalancing, the annealed mean, the classify head (luma kept exactly, ONNX parity) and the colour
metrics."""
import numpy as np
import onnx
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from trainer.color import (lab_to_rgb, luma_to_lightness, rgb_to_lab, rgb_to_luma, ycbcr_to_rgb,
                           ycbcr_to_rgb_in_gamut)
from trainer.colorize import quantize
from trainer.colorize.model import Translator


def test_lab_matches_scikit_image_both_ways():
    rng = np.random.default_rng(0)
    rgb = rng.random((7, 9, 3))
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    lab = rgb_to_lab(t)[0].permute(1, 2, 0).numpy()
    assert np.abs(lab - rgb2lab(rgb)).max() < 1e-3
    back = lab_to_rgb(torch.from_numpy(rgb2lab(rgb)).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(back - rgb).max() < 1e-4
    # a gray pixel's L* from its luma alone
    g = torch.rand(1, 1, 4, 4) * 2 - 1
    assert torch.allclose(luma_to_lightness(g), rgb_to_lab(((g + 1) / 2).expand(1, 3, 4, 4))[:, :1], atol=1e-4)


def test_gamut_bins_hold_every_srgb_colour():
    bins = quantize.gamut_bins()
    assert 250 <= len(bins) <= 320 and not (bins % 10).any()
    rng = np.random.default_rng(1)
    ab = rgb2lab(rng.random((1, 5000, 3)))[0, :, 1:]
    cells = {tuple(x) for x in (np.round(ab / 10) * 10).astype(int)}
    assert cells <= {tuple(x) for x in bins.astype(int)}


def test_soft_encoding_and_nearest_bin():
    bins = torch.from_numpy(quantize.gamut_bins())
    ab = (torch.rand(2, 2, 3, 4) - 0.5) * 120
    z = quantize.soft_encode(ab, bins)
    assert z.shape == (2, len(bins), 3, 4)
    assert torch.allclose(z.sum(1), torch.ones(2, 3, 4), atol=1e-6)
    assert ((z > 0).sum(1) == quantize.SOFT_K).all()
    assert torch.equal(z.argmax(1), quantize.nearest_bin(ab, bins))


def test_rebalancing_weights_have_expectation_one_and_favour_rare_colours():
    bins = quantize.gamut_bins()
    counts = np.zeros(len(bins))
    counts[np.argmin(np.abs(bins).sum(1))] = 1000  # gray dominates
    counts[:5] = 1
    prior = quantize.empirical_prior(counts, bins)
    assert abs(prior.sum() - 1) < 1e-9 and prior.argmax() == np.argmin(np.abs(bins).sum(1))
    w = quantize.rebalance_weights(prior)
    assert abs((prior * w).sum() - 1) < 1e-5
    assert w[prior.argmax()] == w.min() and (w[:5] > 1).all()  # the common colour weighs least, rare ones above 1
    lam, q = quantize.LAMBDA, len(bins)  # eq. 4: the uniform share caps the ratio of weights
    assert w.max() / w.min() == pytest.approx(((1 - lam) * prior.max() + lam / q) / ((1 - lam) * prior.min() + lam / q), rel=1e-4)


def test_annealed_mean_between_mean_and_mode():
    bins = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 60.0]])
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2]))[None, :, None, None]
    mean = quantize.annealed_mean(logits, bins, 1.0)[0, :, 0, 0]
    assert torch.allclose(mean, torch.tensor([15.0, 12.0]), atol=1e-4)
    mode = quantize.annealed_mean(logits, bins, 0.01)[0, :, 0, 0]
    assert torch.allclose(mode, torch.tensor([0.0, 0.0]), atol=1e-3)
    t = quantize.annealed_mean(logits, bins, quantize.TEMPERATURE)[0, :, 0, 0]
    assert 0 < t[0] < 15 and 0 < t[1] < 12  # sharper than the mean, softer than the mode


def test_rebalanced_ce_is_weighted_soft_cross_entropy():
    logits = torch.randn(1, 3, 2, 2)
    z = torch.softmax(torch.randn(1, 3, 2, 2), 1)
    q = z.argmax(1)
    w = torch.tensor([1.0, 2.0, 0.5])
    ce = -(z * torch.log_softmax(logits, 1)).sum(1)
    assert torch.allclose(quantize.rebalanced_ce(logits, z, w, q), (w[q] * ce).mean())


def test_in_gamut_decoding_keeps_luma_exactly_where_clipping_does_not():
    y = torch.tensor([0.9, -0.9, 0.0]).reshape(1, 1, 3, 1)
    chroma = torch.tensor([[0.5, -0.4, 0.3], [0.5, 0.6, -0.45]]).reshape(1, 2, 3, 1)
    kept = ycbcr_to_rgb_in_gamut(y, chroma)
    assert kept.abs().max() <= 1 and torch.allclose(rgb_to_luma(kept), y, atol=1e-6)
    assert not torch.allclose(rgb_to_luma(ycbcr_to_rgb(y, chroma)), y, atol=1e-3)  # the plain clamp moves luma
    inside = torch.full((1, 2, 1, 1), 0.05)
    assert torch.allclose(ycbcr_to_rgb_in_gamut(torch.zeros(1, 1, 1, 1), inside),
                          ycbcr_to_rgb(torch.zeros(1, 1, 1, 1), inside), atol=1e-7)  # in gamut: unchanged


@pytest.mark.parametrize("pono_ms", [True, False])
def test_classify_head_shapes_luma_and_colour(pono_ms):
    torch.manual_seed(0)
    net = Translator(ngf=8, n_blocks=1, pono_ms=pono_ms, head="classify").eval()
    x = torch.rand(2, 1, 24, 32) * 2 - 1
    with torch.no_grad():
        logits, y = net.logits(x), net(x)
    assert logits.shape == (2, len(net.ab_bins), 12, 16)
    assert y.shape == (2, 3, 24, 32) and y.abs().max() <= 1
    assert torch.allclose(rgb_to_luma(y), x, atol=1e-5)
    assert (y - x).abs().max() > 0.01  # it colours
    with pytest.raises(ValueError):
        Translator(ngf=8, n_blocks=1, head="classify", task="rgb")


def test_chroma_gain_scales_the_decoded_ab_and_keeps_luma():
    torch.manual_seed(3)
    net = Translator(ngf=8, n_blocks=1, head="classify").eval()
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        logits = net.logits(x)
        full = net.decode(x, logits)
        net.chroma_gain = 0.0
        gray = net.decode(x, logits)
        net.chroma_gain = 0.5
        half = net.decode(x, logits)
    assert torch.allclose(gray, x.expand(-1, 3, -1, -1), atol=2e-4)  # gain 0 = the gray copy (Lab round trip, float32)
    for y in (full, half):
        assert torch.allclose(rgb_to_luma(y), x, atol=1e-5)
    spread = lambda y: (y - rgb_to_luma(y)).abs().mean()  # noqa: E731  (distance from gray)
    assert 0.2 * spread(full) < spread(half) < 0.8 * spread(full)
    with pytest.raises(ValueError):
        Translator(ngf=8, n_blocks=1, head="classify", chroma_gain=-0.1)


def test_parse_gains():
    from trainer.colorize.evaluate import parse_gains
    assert parse_gains("0.6, 0.8,1") == [0.6, 0.8, 1.0]
    for bad in ("", "x", "2.5", "-1"):
        with pytest.raises(ValueError):
            parse_gains(bad)


def test_classify_onnx_graph_is_exported_and_checked(tmp_path):
    from trainer.export import export_onnx
    torch.manual_seed(1)
    net = Translator(ngf=8, n_blocks=1, head="classify").eval()
    path = str(tmp_path / "m.onnx")
    export_onnx(net, path)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    # the annealed-mean softmax is exported in its rewritten form (trainer/graph.py: exp(z - max) through one conv)
    assert {"ReduceMax", "Exp", "Div", "Resize", "Where", "Pow"} <= ops and "Softmax" not in ops


def test_colourfulness_and_auc():
    gray = np.full((8, 8, 3), 128, np.uint8)
    assert quantize.colourfulness(gray) == 0
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert quantize.colourfulness(img) > 20
    assert quantize.ab_error_auc(img, img) == pytest.approx(1.0)
    assert quantize.ab_error_auc(gray, img) < quantize.ab_error_auc(img, img)
