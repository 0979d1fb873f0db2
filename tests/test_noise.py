import pytest
import torch

from benchmarks.cases import poisson_gaussian_noise
from generative.noise import add_gaussian_noise
from training.degradations import iid_sigma_map, training_sigma_map


def assert_noise_variance(y: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> None:
    """mean((y − x)²) equals mean(σ²) within 4 standard errors (Var n² = 2σ⁴ for n ~ N(0, σ²))."""
    sq = (y - x).double() ** 2
    var = sigma.double().expand_as(sq) ** 2
    standard_error = torch.sqrt(2 * (var**2).sum()) / sq.numel()
    assert abs(sq.mean() - var.mean()) < 4 * standard_error


def test_iid_noise_has_the_stated_variance():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 3, 32, 32, generator=g)
    sigma = iid_sigma_map(4, 32, 32, generator=g)
    y = add_gaussian_noise(x, sigma, g)
    assert y.shape == x.shape
    assert_noise_variance(y, x, sigma)
    assert (y < 0).any() or (y > 1).any()  # no clipping
    assert_noise_variance(add_gaussian_noise(x, 0.1, g), x, torch.tensor(0.1))


def test_bump_noise_has_the_stated_variance():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 48, 48, generator=g)
    sigma = training_sigma_map(4, 48, 48, g)
    y = add_gaussian_noise(x, sigma, g)
    assert_noise_variance(y, x, sigma)
    # Where the map is high the noise is stronger than where it is low.
    high, low = sigma >= sigma.median(), sigma < sigma.median()
    power = ((y - x) ** 2).mean(1, keepdim=True)
    assert power[high].mean() > power[low].mean()


def test_poisson_gaussian_noise_is_signal_dependent():
    g = torch.Generator().manual_seed(4)
    x = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(2, 3, 64, 64)
    y, sigma = poisson_gaussian_noise(x, 0.01, 1e-4, g)
    assert y.shape == sigma.shape == x.shape
    torch.testing.assert_close(sigma**2, 0.01 * x + 1e-4)
    assert_noise_variance(y, x, sigma)
    assert_noise_variance(y[..., 48:], x[..., 48:], sigma[..., 48:])
    with pytest.raises(ValueError):
        poisson_gaussian_noise(x, -0.1, 0.0)


def test_noise_is_reproducible_and_differentiable():
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    sigma = torch.full((1, 1, 8, 8), 0.1, requires_grad=True)
    y1 = add_gaussian_noise(x, sigma, torch.Generator().manual_seed(5))
    y2 = add_gaussian_noise(x, sigma, torch.Generator().manual_seed(5))
    torch.testing.assert_close(y1, y2)
    y1.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))
    assert (sigma.grad != 0).all()
    with pytest.raises(ValueError):
        add_gaussian_noise(x, torch.ones(2, 1, 8, 8))


@pytest.mark.gpu
def test_cpu_generator_gives_the_same_noise_on_cuda():
    x = torch.rand(2, 3, 16, 16)
    sigma = training_sigma_map(2, 16, 16, torch.Generator().manual_seed(0), device="cuda")
    assert sigma.device.type == "cuda"
    y_gpu = add_gaussian_noise(x.cuda(), sigma, torch.Generator().manual_seed(1))
    y_cpu = add_gaussian_noise(x, sigma.cpu(), torch.Generator().manual_seed(1))
    assert y_gpu.device.type == "cuda"
    torch.testing.assert_close(y_gpu.cpu(), y_cpu)
    y_cuda_gen = add_gaussian_noise(x.cuda(), sigma, torch.Generator(device="cuda").manual_seed(1))
    assert y_cuda_gen.device.type == "cuda"
