"""PONO (eq. 2), MS (section 3.1) and IN (kept at test time)."""
import pytest
import torch

from trainer.normalization import PONO, MomentShortcut, instance_norm, moment_shortcut, pono


def test_pono_zero_mean_unit_variance_over_channels_at_every_pixel():
    torch.manual_seed(0)
    x = torch.randn(3, 16, 9, 7) * 5 + 2
    x_hat, mu, sigma = pono(x)
    assert mu.shape == sigma.shape == (3, 1, 9, 7)
    assert torch.allclose(x_hat.mean(dim=1), torch.zeros(3, 9, 7), atol=1e-5)
    assert torch.allclose(x_hat.var(dim=1, unbiased=False), torch.ones(3, 9, 7), atol=1e-3)


def test_pono_statistics_are_biased_with_eps_inside_the_root():
    x = torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)
    _, mu, sigma = pono(x)
    assert mu.item() == pytest.approx(2.0)
    assert sigma.item() == pytest.approx((1.0 + 1e-5) ** 0.5)  # biased variance 1, not 2


def test_ms_after_pono_with_same_moments_is_identity():
    torch.manual_seed(1)
    x = torch.randn(2, 8, 5, 6) * 3 - 1
    x_hat, mu, sigma = PONO()(x)
    assert torch.allclose(MomentShortcut()(x_hat, mu, sigma), x, atol=1e-5)


def test_pono_and_ms_reject_bad_shapes():
    with pytest.raises(ValueError):
        pono(torch.zeros(4, 4))
    with pytest.raises(ValueError):
        moment_shortcut(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))


def test_instance_norm_is_the_same_in_train_and_eval_mode():
    torch.manual_seed(2)
    norm = instance_norm(4)
    x = torch.randn(2, 4, 6, 6) * 4 + 3
    y_train = norm.train()(x)
    y_eval = norm.eval()(x)
    assert torch.allclose(y_train, y_eval)
    assert torch.allclose(y_eval.mean(dim=(2, 3)), torch.zeros(2, 4), atol=1e-5)


# --- PONO-DMS (Li et al. 2019, section 3.1, Table 3) -------------------------------------------------------

def test_dms_starts_as_ms_and_generates_per_channel_or_one_channel_coefficients():
    from trainer.normalization import DynamicMomentShortcut, moment_shortcut, pono
    torch.manual_seed(0)
    f = torch.randn(2, 6, 5, 7)
    _, mu, sigma = pono(torch.randn(2, 6, 5, 7))
    for multi, layers, kernel in ((True, 1, 3), (False, 1, 3), (True, 2, 5), (False, 2, 3)):
        dms = DynamicMomentShortcut(6, multi, layers, kernel)
        # zero-initialised heads: at step 0 DMS is exactly MS (gamma = sigma, beta = mu)
        assert torch.equal(dms(f, mu, sigma), moment_shortcut(f, mu, sigma))
        for p in dms.parameters():
            torch.nn.init.normal_(p, std=0.3)
        beta, gamma = dms.coefficients(mu, sigma)
        assert beta.shape == gamma.shape == ((2, 6, 5, 7) if multi else (2, 1, 5, 7))
        assert torch.allclose(dms(f, mu, sigma), gamma * f + beta)
        assert not torch.allclose(dms(f, mu, sigma), moment_shortcut(f, mu, sigma))
    with pytest.raises(ValueError):
        DynamicMomentShortcut(6, layers=3)
    with pytest.raises(ValueError):
        DynamicMomentShortcut(6, kernel=4)
    with pytest.raises(ValueError):
        DynamicMomentShortcut(6)(f, mu[..., :4], sigma[..., :4])


def test_dms_one_conv_3x3_is_local_in_the_moments():
    """One 3x3 conv: beta at a pixel depends on mu, sigma within one pixel of it, nowhere else."""
    from trainer.normalization import DynamicMomentShortcut
    torch.manual_seed(1)
    dms = DynamicMomentShortcut(4, True, 1, 3)
    for p in dms.parameters():
        torch.nn.init.normal_(p, std=0.3)
    mu = torch.zeros(1, 1, 9, 9, requires_grad=True)
    sigma = torch.ones(1, 1, 9, 9)
    beta, _ = dms.coefficients(mu, sigma)
    beta[0, :, 4, 4].sum().backward()
    touched = (mu.grad[0, 0] != 0).nonzero().tolist()
    assert touched and all(abs(y - 4) <= 1 and abs(x - 4) <= 1 for y, x in touched)
