import math

import pytest
import torch

from generative.variance_prior import MIN_XI, gaussian_window, variance_prior_estimate


@pytest.mark.parametrize("p", [1, 3, 7, 9, 11])
def test_window_is_normalised_with_the_stated_std(p):
    window = gaussian_window(p, dtype=torch.float64)
    assert window.shape == (p, p)
    torch.testing.assert_close(window.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(window, window.T)
    if p > 1:
        c = p // 2
        std = 0.3 * ((p - 1) / 2 - 1) + 0.8
        # Neighbouring taps of exp(−d²/2std²) have ratio exp(−1/2std²).
        ratio = window[c, c + 1] / window[c, c]
        assert ratio.item() == pytest.approx(math.exp(-1 / (2 * std**2)), rel=1e-12)
        assert window[c, c] == window.max()


def test_window_rejects_even_size():
    with pytest.raises(ValueError):
        gaussian_window(8)


@pytest.mark.parametrize("channels", [1, 3])
def test_xi_of_iid_noise_has_mean_sigma_squared(channels):
    g = torch.Generator().manual_seed(3)
    sigma = 0.1
    x = torch.rand(1, 3, 64, 64, generator=g)
    y = x + sigma * torch.randn(x.shape, generator=g)
    xi = variance_prior_estimate(y, x, 7, channels=channels)
    assert xi.shape == (1, channels, 64, 64)
    assert xi.mean().item() == pytest.approx(sigma**2, rel=0.04)


def test_xi_follows_a_spatially_varying_level():
    g = torch.Generator().manual_seed(4)
    sigma = torch.where(torch.arange(64).view(1, 1, 1, 64) < 32, 0.05, 0.2).expand(1, 1, 64, 64)
    x = torch.zeros(1, 3, 64, 64)
    y = x + sigma * torch.randn(x.shape, generator=g)
    xi = variance_prior_estimate(y, x, 7)
    assert xi[..., :24].mean().item() == pytest.approx(0.05**2, rel=0.1)
    assert xi[..., 40:].mean().item() == pytest.approx(0.2**2, rel=0.1)


def test_channels_one_averages_over_channels():
    y = torch.zeros(2, 3, 10, 12)
    hx = torch.zeros(2, 3, 10, 12)
    hx[:, 0] = 0.3  # residual only in channel 0
    per_channel = variance_prior_estimate(y, hx, 5, channels=3)
    shared = variance_prior_estimate(y, hx, 5)
    torch.testing.assert_close(per_channel[:, 0], torch.full((2, 10, 12), 0.09))
    torch.testing.assert_close(per_channel[:, 1:], torch.full((2, 2, 10, 12), MIN_XI))
    torch.testing.assert_close(shared, torch.full((2, 1, 10, 12), 0.03))


def test_xi_smooths_an_impulse_into_the_window():
    y = torch.zeros(1, 1, 15, 15)
    y[..., 7, 7] = 2.0
    xi = variance_prior_estimate(y, torch.zeros_like(y), 7)
    torch.testing.assert_close(xi[0, 0, 4:11, 4:11], 4.0 * gaussian_window(7))
    assert xi[0, 0, 0, 0].item() == pytest.approx(MIN_XI)  # far from the impulse: clamped


def test_xi_has_gradient_and_follows_dtype():
    y = torch.rand(1, 2, 16, 16, dtype=torch.float64)
    hx = torch.rand(1, 2, 16, 16, dtype=torch.float64, requires_grad=True)
    xi = variance_prior_estimate(y, hx, 3)
    assert xi.dtype == torch.float64
    xi.sum().backward()
    assert torch.isfinite(hx.grad).all()


def test_bad_input_raises_value_error():
    y = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError):
        variance_prior_estimate(y, y, 7, channels=2)
    with pytest.raises(ValueError):
        variance_prior_estimate(y, y[:, :1], 7)
    with pytest.raises(ValueError):
        variance_prior_estimate(y[..., :4, :4], y[..., :4, :4], 11)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    y, hx = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    xi_gpu = variance_prior_estimate(y.cuda(), hx.cuda(), 7)
    assert xi_gpu.device.type == "cuda"
    torch.testing.assert_close(xi_gpu.cpu(), variance_prior_estimate(y, hx, 7))
