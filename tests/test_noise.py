import numpy as np
import pytest
import torch

from benchmarks.cases import poisson_gaussian_noise, table1_sigma_map
from generative.noise import add_gaussian_noise
from training.degradations import iid_sigma_map, training_sigma_map


def assert_noise_variance(y: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> None:
    """mean((y − x)²) equals mean(σ²) within 4 standard errors (Var n² = 2σ⁴ for n ~ N(0, σ²))."""
    sq = (y - x).double() ** 2
    var = sigma.double().expand_as(sq) ** 2
    standard_error = torch.sqrt(2 * (var**2).sum()) / sq.numel()
    assert abs(sq.mean() - var.mean()) < 4 * standard_error


def test_training_sigma_maps_are_bumps_in_range():
    sigma = training_sigma_map(16, 32, 48, torch.Generator().manual_seed(0))
    assert sigma.shape == (16, 1, 32, 48)
    low, high = sigma.amin(dim=(1, 2, 3)), sigma.amax(dim=(1, 2, 3))
    assert (low >= 0).all() and (high <= 80 / 255 + 1e-6).all()
    assert (high - low >= 5 / 255 - 1e-6).all()  # hi − lo >= 5/255, attained by the min-max normalisation
    assert not torch.allclose(sigma[0], sigma[1])
    # A single Gaussian bump is lowest at the corner farthest from its centre.
    corners = sigma[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    torch.testing.assert_close(corners.min(dim=1).values, low)


def test_training_sigma_map_is_reproducible_and_moves_to_device():
    a = training_sigma_map(2, 8, 8, torch.Generator().manual_seed(7), device="cpu")
    b = training_sigma_map(2, 8, 8, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)


def test_iid_sigma_maps_are_constant_per_image():
    sigma = iid_sigma_map(500, 4, 5, generator=torch.Generator().manual_seed(1))
    assert sigma.shape == (500, 1, 4, 5)
    assert (sigma == sigma[:, :, :1, :1]).all()
    assert sigma.min() >= 0 and sigma.max() <= 75 / 255
    assert sigma.max() > 70 / 255 and sigma.min() < 5 / 255
    assert iid_sigma_map(3, 2, 2, max_sigma=0.01).max() <= 0.01


@pytest.mark.parametrize("case", [1, 2, 3])
def test_table1_sigma_maps_span_the_stated_range(case):
    base = table1_sigma_map(case, 256, 256)
    assert base.shape == (256, 256) and base.dtype == torch.float32
    assert base.min().item() == pytest.approx(10 / 255)
    assert base.max().item() == pytest.approx(75 / 255)
    resized = table1_sigma_map(case, 300, 420)  # upsizing keeps every base pixel
    assert resized.shape == (300, 420)
    assert resized.min().item() == pytest.approx(10 / 255) and resized.max().item() == pytest.approx(75 / 255)
    small = table1_sigma_map(case, 64, 32)
    assert small.shape == (64, 32)
    torch.testing.assert_close(small, base[2::4, 4::8])  # nearest to each output pixel centre


def test_peaks_and_sinusoid_maps_match_their_formulas():
    peaks = table1_sigma_map(1, 256, 256).double()
    # MATLAB's peaks has its global maximum near (x, y) = (−0.0093, 1.5814), i.e. row ~ 195, column ~ 127.
    row, col = divmod(int(peaks.argmax()), 256)
    assert abs(row - 195) <= 1 and abs(col - 127) <= 1
    sinus = table1_sigma_map(2, 256, 256).double()
    x, y = np.meshgrid(np.linspace(1, 10, 256), np.linspace(1, 20, 256))
    raw = torch.from_numpy(np.sin(x) + np.cos(y))
    expected = 10 / 255 + 65 / 255 * (raw - raw.min()) / (raw.max() - raw.min())
    torch.testing.assert_close(sinus, expected, atol=1e-6, rtol=0)


def test_case_three_is_reproducible_with_the_default_rng():
    default = table1_sigma_map(3, 128, 128)
    torch.testing.assert_close(default, table1_sigma_map(3, 128, 128))
    torch.testing.assert_close(default, table1_sigma_map(3, 128, 128, np.random.default_rng(1000)))
    assert not torch.allclose(default, table1_sigma_map(3, 128, 128, np.random.default_rng(1)))


def test_table1_sigma_map_rejects_unknown_case():
    with pytest.raises(ValueError):
        table1_sigma_map(4, 64, 64)


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
