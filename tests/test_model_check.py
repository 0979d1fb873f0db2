"""The posterior predictive check: r = (y − Hµ)/σ̂ is N(0, 1) exactly when the noise model holds."""

import pytest
import torch

from generative.kernels import gaussian_kernel, lambda_from_axes
from generative.operators import degrade
from virnet.model_check import FIT_RANGE, ModelCheck, check_residuals, standardized_residuals


def clean_image(size=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, 3, size // 8, size // 8, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def spatially_varying_sigma(size=48):
    ramp = torch.linspace(5 / 255, 50 / 255, size)
    return ramp.view(1, 1, 1, size).expand(2, 1, size, size)


def test_true_restoration_and_true_variance_give_standard_normal_residuals():
    x, sigma = clean_image(), spatially_varying_sigma()
    y = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    residuals = standardized_residuals(y, x, sigma**2)
    checks = check_residuals(residuals)
    assert len(checks) == 2
    for check in checks:
        assert abs(check.mean) < 0.05
        assert abs(check.std - 1) < 0.05
        assert check.outliers < 0.01
        assert check.fits


def test_underestimated_noise_is_reported_as_not_fitting():
    x, sigma = clean_image(), spatially_varying_sigma()
    y = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    (check, _) = check_residuals(standardized_residuals(y, x, (sigma / 2) ** 2))
    assert check.std == pytest.approx(2.0, rel=0.05)
    assert not check.fits
    assert "NOT fit" in check.summary() and "underestimated" in check.summary()


def test_super_resolution_residuals_use_the_blur_and_downsampler():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    lam = lambda_from_axes(torch.tensor([1.6, 2.0]), torch.tensor([0.8, 1.2]), torch.tensor([0.3, 1.0]))
    kernel = gaussian_kernel(lam[:, :2], lam[:, 2], 21)
    hx = degrade(x, kernel, 4, "bicubic")
    y = hx + 0.02 * torch.randn(hx.shape, generator=torch.Generator().manual_seed(3))
    beta = torch.full((2, 1, 16, 16), 0.02**2)
    right = check_residuals(standardized_residuals(y, x, beta, kernel, 4, "bicubic"))
    without_blur = check_residuals(standardized_residuals(y, x, beta, None, 4, "bicubic"))
    assert all(check.fits for check in right)
    assert all(not check.fits for check in without_blur)


def test_a_restoration_smaller_than_the_kernel_is_replicate_padded_to_its_radius_not_refused():
    mu = torch.rand(1, 3, 10, 14)
    kernel = gaussian_kernel(torch.tensor([[1.0, 1.0]]), torch.tensor([0.0]), 21)
    with pytest.raises(ValueError, match="too small"):
        degrade(mu, kernel, 2)
    y = degrade(torch.nn.functional.pad(mu, (0, 0, 0, 1), mode="replicate"), kernel, 2)[..., :5, :7]
    residuals = standardized_residuals(y, mu, torch.full((1, 1, 5, 7), 1e-4), kernel, 2)
    assert residuals.shape == (1, 3, 5, 7)
    assert residuals.abs().max() < 1e-3


def test_summary_is_one_line_with_the_statistics():
    check = ModelCheck(mean=0.01, std=1.02, outliers=0.003)
    line = check.summary()
    assert "\n" not in line
    assert "std 1.020" in line and "0.30%" in line and "fits" in line


@pytest.mark.parametrize("std", [FIT_RANGE[0] - 0.01, FIT_RANGE[1] + 0.01])
def test_fit_range_bounds_the_verdict(std):
    assert not ModelCheck(0.0, std, 0.0).fits
    assert ModelCheck(0.0, (FIT_RANGE[0] + FIT_RANGE[1]) / 2, 0.0).fits


def test_replicates_set_the_expected_statistics_and_the_verdict_uses_their_ratio():
    generator = torch.Generator().manual_seed(5)
    observed = 1.3 * torch.randn(2, 3, 32, 32, generator=generator)
    replicated = 1.2 * torch.randn(4, 2, 3, 16, 16, generator=generator)  # n×B×C×h'×w' (a crop)
    checks = check_residuals(observed, replicated)
    for check, draws in zip(checks, replicated.transpose(0, 1)):
        assert check.expected_std == pytest.approx(draws.flatten(1).std(dim=1, correction=0).mean().item())
        assert check.expected_outliers == pytest.approx((draws.abs() > 3).double().mean().item())
        assert check.ratio == pytest.approx(1.3 / 1.2, rel=0.05)
        assert check.fits  # 1.3 alone is outside FIT_RANGE, but the model predicts 1.2
        assert f"std {check.std:.3f} (model: {check.expected_std:.3f})" in check.summary()
    assert not check_residuals(observed)[0].fits
