"""The random degradations of training: σ maps and kernels (DegradationSpec and `synthesize`:
tests/test_data.py)."""

import pytest
import torch

from generative.kernels import axes_from_lambda
from training.degradations import MIN_TRAINING_WIDTH, DegradationSpec, iid_sigma_map, sample_kernel_lambdas, training_sigma_map


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


def test_sample_kernel_lambdas_ranges_and_reproducibility():
    lam = sample_kernel_lambdas(2000, 3, torch.Generator().manual_seed(5))
    assert lam.shape == (2000, 3) and lam.dtype == torch.float32
    l1, l2, theta = axes_from_lambda(lam.double())
    widths = torch.cat([l1, l2])
    assert widths.min() >= MIN_TRAINING_WIDTH - 1e-5 and widths.max() <= 3 + 1e-5
    assert widths.max() > 2.9 and widths.min() < 0.2
    assert (lam[:, 2].abs() <= 1).all()
    torch.testing.assert_close(lam, sample_kernel_lambdas(2000, 3, torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError):
        sample_kernel_lambdas(4, 0)


@pytest.mark.parametrize("scale", [2.0, 5, True])
def test_an_sr_spec_needs_an_integer_scale_the_model_supports(scale):
    with pytest.raises(ValueError, match="scale"):
        DegradationSpec(task="sr", scale=scale, patch_size=96)
