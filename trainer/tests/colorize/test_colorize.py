"""The PONO-MS translator: shapes, the luma-preserving colour head, and the ablation switch."""
import pytest
import torch

from trainer.color import rgb_to_chroma, rgb_to_luma, ycbcr_to_rgb
from trainer.colorize.model import Translator


def test_shapes_and_range_with_and_without_pono_ms():
    torch.manual_seed(0)
    for pono_ms in (True, False):
        net = Translator(ngf=8, n_blocks=1, pono_ms=pono_ms).eval()
        y = net(torch.rand(2, 1, 20, 28) * 2 - 1)
        assert y.shape == (2, 3, 20, 28)
        assert y.min() >= -1 and y.max() <= 1


def test_zero_initialised_head_is_the_gray_copy():
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    y = Translator(ngf=8, n_blocks=1).eval()(x)
    assert torch.allclose(y, x.expand(1, 3, 16, 16), atol=1e-6)


def test_output_luma_is_input_luma_when_not_clamped():
    torch.manual_seed(3)
    net = Translator(ngf=8, n_blocks=1)
    torch.nn.init.normal_(net.head[1].weight, std=0.002)  # a small but non-trivial chroma
    x = torch.rand(1, 1, 16, 16) * 1.0 - 0.5  # mid-range luma: no clamping
    y = net(x)
    assert (y - x).abs().max() > 1e-3  # it does colour
    assert y.abs().max() < 1  # nothing clamped
    assert torch.allclose(rgb_to_luma(y), x, atol=1e-5)


def test_pono_ms_changes_the_function():
    torch.manual_seed(4)
    a = Translator(ngf=8, n_blocks=1, pono_ms=True, task="rgb")
    b = Translator(ngf=8, n_blocks=1, pono_ms=False, task="rgb")
    b.load_state_dict(a.state_dict())  # same weights: PONO/MS have none
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    assert not torch.allclose(a(x), b(x))


def test_size_multiple_is_enforced():
    with pytest.raises(ValueError):
        Translator(ngf=8, n_blocks=1)(torch.zeros(1, 1, 18, 16))


def test_ycbcr_round_trip():
    rgb = torch.rand(2, 3, 5, 5) * 2 - 1
    assert torch.allclose(ycbcr_to_rgb(rgb_to_luma(rgb), rgb_to_chroma(rgb)), rgb, atol=1e-5)
