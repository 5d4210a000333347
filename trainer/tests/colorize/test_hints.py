"""Issue 29's colour hints: the hinted colorizer keeps the automatic output without hints, moves towards a
hint's colour with one, and samples hints as Zhang et al. 2017 do."""
import numpy as np
import pytest
import torch

from trainer.colorize.hints import AB_SCALE, HintedColorizer, fixed_hints, sample_hints, true_ab
from trainer.colorize.model import Translator


def _model(seed=0):
    torch.manual_seed(seed)
    body = Translator(1, 8, 1, True, "colorize", "classify", chroma_gain=0.8).eval()
    return HintedColorizer(body, width=4).eval()


def test_without_hints_the_output_is_the_automatic_colorizer_exactly():
    m = _model()
    # a trained-looking hint path (non-zero output weights) must still be gated off without hints
    torch.nn.init.normal_(m.hint_net.out.weight, std=0.5)
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m(x, torch.zeros(2, 3, 32, 48)), m.body(x))
        _, gate = m.ab_half(x, torch.zeros(2, 3, 32, 48))
    assert gate.abs().max() == 0


def test_size_multiple_is_checked():
    with pytest.raises(ValueError):
        _model().ab_half(torch.zeros(1, 1, 24, 32), torch.zeros(1, 3, 24, 32))


def test_hint_path_learns_to_follow_a_hint():
    m = _model(1)
    for p in m.body.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(m.hint_net.parameters(), lr=3e-3)
    x = torch.zeros(4, 1, 32, 32)
    target = torch.tensor([60.0, -40.0])
    hints = torch.zeros(4, 3, 32, 32)
    hints[:, 0, 14:19, 14:19], hints[:, 1, 14:19, 14:19], hints[:, 2, 14:19, 14:19] = 60 / AB_SCALE, -40 / AB_SCALE, 1
    def err():
        ab, _ = m.ab_half(x, hints)
        return (ab - target[None, :, None, None]).abs().mean()
    e0 = err().item()
    for _ in range(60):
        opt.zero_grad(); loss = err(); loss.backward(); opt.step()
    assert err().item() < 0.5 * e0


def test_sample_hints_geometric_counts_and_patch_means():
    ab = torch.zeros(200, 2, 32, 32)
    ab[:, 0] = 50.0
    h = sample_hints(ab, np.random.default_rng(0))
    assert h.shape == (200, 3, 32, 32)
    assert (h[:, 2].amax((1, 2)) == 1).all()  # no_hint_share 0: every image has hints
    assert torch.allclose(h[:, 0][h[:, 2] > 0], torch.tensor(50 / AB_SCALE))
    none = sample_hints(ab, np.random.default_rng(0), no_hint_share=1.0)
    assert none.abs().sum() == 0


def test_fixed_hints_are_seeded_5x5_patches():
    y = torch.rand(2, 3, 40, 40) * 2 - 1
    ab = true_ab(y)
    a, b = fixed_hints(ab, 10, seed=5), fixed_hints(ab, 10, seed=5)
    assert torch.equal(a, b)
    assert 25 <= a[0, 2].sum() <= 250
    assert not torch.equal(a, fixed_hints(ab, 10, seed=6))
