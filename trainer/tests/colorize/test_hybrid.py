"""Issue 42's hybrid colorizer: the edge-aware solve (Levin et al. 2004 rows + a data term, BiCGSTAB coarse to
fine) against a direct sparse solve and Levin's own; hints stay local across a strong edge; without hints the
output is the confidence-weighted automatic prior; hints of one colour stay local, hints that disagree fill
where the network is unsure; exact luma; the ONNX export's size multiple."""
import numpy as np
import pytest
import torch

from trainer.color import rgb_to_luma
from trainer.colorize.hints import AB_SCALE, HintedColorizer
from trainer.colorize.hybrid import HybridColorizer, SolveConfig, confidence, disagreement
from trainer.colorize.model import Translator
from trainer.colorize.propagate import OFFSETS, row_weights, solve, solve_pyramid


def _two_regions(h=32, w=48, edge=24, lo=0.3, hi=0.8):
    y = torch.full((1, 1, h, w), lo)
    y[..., edge:] = hi
    g = torch.Generator().manual_seed(0)
    return (y + (torch.rand(1, 1, h, w, generator=g) - 0.5) * 0.01).clamp(0, 1)


def test_row_weights_sum_to_one_and_cut_a_strong_edge():
    y = _two_regions()
    w = row_weights(y)
    assert w.shape == (1, 8, 32, 48)
    assert torch.allclose(w.sum(1), torch.ones(1, 32, 48), atol=1e-5)
    k = OFFSETS.index((0, 1))  # the right-hand neighbour of the last column before the edge
    assert w[0, k, 10, 23] < 1e-6 and w[0, k, 10, 10] > 0.1
    assert w[0, k, 10, 47] == 0  # outside the image


def test_bicgstab_reaches_the_direct_solution():
    scipy = pytest.importorskip("scipy.sparse")
    from scipy.sparse.linalg import spsolve
    torch.manual_seed(0)
    h, w = 16, 16
    y = torch.rand(1, 1, h, w, dtype=torch.float64)
    c = torch.full((1, 1, h, w), 0.05, dtype=torch.float64)
    c[..., 3, 4] = 100.0
    t = torch.randn(1, 3, h, w, dtype=torch.float64) * 20
    x = solve(y, c, t, torch.zeros_like(t), 200)
    wts = row_weights(y)[0].double().numpy()
    n = h * w
    idx = np.arange(n).reshape(h, w)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [1.0 + c[0, 0].double().numpy().ravel()]
    for k, (dy, dx) in enumerate(OFFSETS):
        ii, jj = np.mgrid[0:h, 0:w]
        ok = (ii + dy >= 0) & (ii + dy < h) & (jj + dx >= 0) & (jj + dx < w)
        rows.append(idx[ok]); cols.append(idx[ii[ok] + dy, jj[ok] + dx]); vals.append(-wts[k][ok])
    a = scipy.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    for ch in range(3):
        ref = spsolve(a, (c[0, 0] * t[0, ch]).double().numpy().ravel()).reshape(h, w)
        # the steps stop at a residual of 1e-5 of the right-hand side's norm: ~1e-3 of the values
        assert np.abs(x[0, ch].numpy() - ref).max() < 1e-2 * np.abs(ref).max()


def test_solve_needs_three_channels():
    with pytest.raises(ValueError):
        solve(torch.rand(1, 1, 8, 8), torch.ones(1, 1, 8, 8), torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), 2)


def test_a_hint_fills_its_region_and_stops_at_the_edge():
    y = _two_regions()
    c = torch.full((1, 1, 32, 48), 1e-5)
    t = torch.zeros(1, 3, 32, 48)
    c[..., 14:17, 8:11] = 100.0
    t[:, :, 14:17, 8:11] = torch.tensor([40.0, -30.0, 1.0])[:, None, None]
    x = solve_pyramid(y, c, t, 3, (10, 10, 20, 40))
    reach = x[0, 2]
    assert reach[15, 20] > 0.5           # same region, 10 px away
    assert reach[15, 28] < 0.1 * reach[15, 20]  # across the edge, 18 px away


def _hybrid(cfg=SolveConfig()):
    torch.manual_seed(0)
    body = Translator(1, 8, 1, True, "colorize", "classify", chroma_gain=0.8).eval()
    return HybridColorizer(HintedColorizer(body, width=4).eval(), cfg).eval()


def test_without_hints_the_output_is_the_confidence_weighted_automatic_colours():
    m = _hybrid()
    x = torch.rand(1, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        ab = m.ab(x, torch.zeros(1, 3, 32, 48))
        logits = m.hinted.body.logits(x)
        auto = m.hinted.ab_half(x, torch.zeros(1, 3, 32, 48))[0]
        conf = confidence(logits, m.hinted.body.ab_bins, m.cfg.spread)
    ref = torch.nn.functional.interpolate(auto * conf, scale_factor=2.0, mode="bilinear", align_corners=False)
    assert torch.allclose(ab, ref, atol=1e-4)
    assert conf.min() > 0 and conf.max() <= 1


def test_output_keeps_the_luma_and_a_hinted_pixel_gets_the_hint():
    m = _hybrid()
    x = _two_regions() * 2 - 1
    hints = torch.zeros(1, 3, 32, 48)
    hints[0, :, 14:17, 8:11] = torch.tensor([30.0 / AB_SCALE, -40.0 / AB_SCALE, 1.0])[:, None, None]
    with torch.no_grad():
        ab = m.ab(x, hints)
        rgb = m(x, hints)
    assert torch.allclose(rgb_to_luma(rgb), x, atol=2e-3)
    assert abs(float(ab[0, 0, 15, 9]) - 30.0) < 3 and abs(float(ab[0, 1, 15, 9]) + 40.0) < 3


def test_size_multiple():
    m = _hybrid()
    assert m.size_multiple == 16
    with pytest.raises(ValueError):
        m(torch.zeros(1, 1, 24, 32), torch.zeros(1, 3, 24, 32))


def _patch(hints, y, x, a, b):
    hints[0, :, y:y + 3, x:x + 3] = torch.tensor([a / AB_SCALE, b / AB_SCALE, 1.0])[:, None, None]


def test_disagreement_is_zero_for_no_hints_and_one_colour_and_grows_with_the_spread():
    h = torch.zeros(1, 3, 32, 48)
    assert float(disagreement(h, 10.0)) == 0.0
    _patch(h, 4, 4, 30.0, -40.0)
    _patch(h, 20, 30, 30.0, -40.0)            # two clicks, one colour
    assert float(disagreement(h, 10.0)) < 1e-3
    _patch(h, 20, 30, 30.0, -30.0)            # the second 10 CIE units away in b*: std 5
    assert abs(float(disagreement(h, 10.0)) - 0.5) < 0.01
    _patch(h, 20, 30, -30.0, 40.0)
    assert float(disagreement(h, 10.0)) == 1.0


def test_the_unsure_fill_acts_only_when_the_hints_disagree():
    """A hint of one colour gives the same output with and without the unsure terms (it stays local); two hints
    of different colours change the unsure pixels towards their propagated colours; no hints: the prior."""
    x = _two_regions(w=160, edge=40) * 2 - 1  # the right region: 120 px, far from both hints
    plain, filled = _hybrid(SolveConfig(unsure_reach=0.0, unsure_fill=0.0)), _hybrid(SolveConfig(unsure_reach=0.5, unsure_fill=0.6, unsure_spread=10.0))
    one = torch.zeros(1, 3, 32, 160)
    _patch(one, 14, 8, 30.0, -40.0)
    two = one.clone()
    _patch(two, 14, 24, -30.0, 40.0)
    with torch.no_grad():
        assert torch.equal(plain.ab(x, one), filled.ab(x, one))
        assert torch.equal(plain.ab(x, torch.zeros_like(one)), filled.ab(x, torch.zeros_like(one)))
        assert (plain.ab(x, two) - filled.ab(x, two)).abs().max() > 1.0
        col, _ = filled.propagate(x, two)
    assert col.abs().max() <= 110.0
