import math
import sys
import types

import numpy as np
import pytest
import torch

from benchmarks import metrics
from benchmarks.metrics import axis_sharpness, kernel_mse, lpips_or_none, psnr_rgb, psnr_y, rgb_to_y, sigma_error, ssim_rgb, ssim_y


def _image(seed: int = 0, shape=(3, 24, 24)) -> torch.Tensor:
    """Random image on the uint8 grid (k/255), so quantisation leaves it unchanged."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(20, 236, shape, generator=generator).double() / 255.0


def test_identical_images_have_infinite_psnr_and_unit_ssim():
    x = _image()
    assert psnr_rgb(x, x.clone()) == math.inf
    assert ssim_rgb(x, x.clone()) == pytest.approx(1.0)
    assert psnr_y(x, x.clone(), crop=0) == math.inf
    assert ssim_y(x, x.clone(), crop=0) == pytest.approx(1.0)


def test_psnr_rgb_matches_the_uint8_mse_formula():
    x = _image()
    offsets = torch.tensor([3.0, -5.0]).repeat(x.numel() // 2).reshape(x.shape) / 255.0
    mse = (3.0**2 + 5.0**2) / 2  # in uint8 levels²
    assert psnr_rgb(x + offsets, x) == pytest.approx(10 * math.log10(255.0**2 / mse), abs=1e-9)


def test_psnr_rgb_quantises_and_clips_like_uint8_images():
    x = _image()
    assert psnr_rgb(x + 0.4 / 255.0, x) == math.inf  # rounds back to the same levels
    white = torch.ones(3, 8, 8)
    assert psnr_rgb(white + 0.5, white) == math.inf  # clipped to 1 before quantising


def test_metrics_accept_numpy_and_average_a_batch():
    x, noisy = _image(0), _image(0) + 2.0 / 255.0
    other, other_noisy = _image(1), _image(1) + 4.0 / 255.0
    batch = torch.stack([noisy, other_noisy]), torch.stack([x, other])
    expected = (psnr_rgb(noisy, x) + psnr_rgb(other_noisy, other)) / 2
    assert psnr_rgb(*batch) == pytest.approx(expected)
    assert psnr_rgb(noisy.numpy(), x.numpy()) == pytest.approx(psnr_rgb(noisy, x))
    expected = (ssim_rgb(noisy, x) + ssim_rgb(other_noisy, other)) / 2
    assert ssim_rgb(*batch) == pytest.approx(expected)


def test_ssim_rgb_drops_as_noise_grows():
    x = _image()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    assert 0.0 < ssim_rgb(x + 0.2 * noise, x) < ssim_rgb(x + 0.05 * noise, x) < 0.99


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_rgb(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))
    with pytest.raises(ValueError, match="C×H×W"):
        ssim_rgb(torch.zeros(8, 8), torch.zeros(8, 8))


def test_rgb_to_y_follows_matlab_rgb2ycbcr():
    white, black = torch.ones(3, 4, 5), torch.zeros(2, 3, 4, 5)
    y_white, y_black = rgb_to_y(white), rgb_to_y(black)
    assert y_white.shape == (1, 4, 5) and y_black.shape == (2, 1, 4, 5)
    assert torch.allclose(y_white, torch.full_like(y_white, 235.0))
    assert torch.allclose(y_black, torch.full_like(y_black, 16.0))
    red = np.zeros((3, 2, 2))
    red[0] = 1.0
    np.testing.assert_allclose(rgb_to_y(red), np.full((1, 2, 2), 16.0 + 65.481))
    with pytest.raises(ValueError, match="RGB"):
        rgb_to_y(torch.ones(1, 4, 4))


def test_y_metrics_ignore_errors_inside_the_cropped_border():
    x = _image(shape=(3, 20, 20))
    damaged = x.clone()
    damaged[:, :3, :] = 0.0
    damaged[:, :, -3:] = 1.0
    assert psnr_y(damaged, x, crop=3) == math.inf
    assert ssim_y(damaged, x, crop=3) == pytest.approx(1.0)
    assert psnr_y(damaged, x, crop=2) < 30.0
    assert ssim_y(damaged, x, crop=0) < 0.99


def test_psnr_y_matches_the_formula_on_the_luma_error():
    x = _image(shape=(3, 16, 16))
    brighter = x + 2.0 / 255.0  # every RGB level + 2 -> Y + 2·(65.481+128.553+24.966)/255
    shift = np.round(rgb_to_y(brighter.numpy())) - np.round(rgb_to_y(x.numpy()))
    expected = 10 * math.log10(255.0**2 / float(np.mean(shift[:, 1:-1, 1:-1] ** 2)))
    assert psnr_y(brighter, x, crop=1) == pytest.approx(expected)


def test_bad_crops_are_rejected():
    x = _image(shape=(3, 8, 8))
    with pytest.raises(ValueError, match="crop"):
        psnr_y(x, x, crop=4)
    with pytest.raises(ValueError, match="crop"):
        ssim_y(x, x, crop=-1)


def test_kernel_mse():
    true = torch.zeros(5, 5)
    true[2, 2] = 1.0
    estimated = torch.full((5, 5), 1.0 / 25)
    expected = ((1 - 1 / 25) ** 2 + 24 * (1 / 25) ** 2) / 25
    assert kernel_mse(estimated, true) == pytest.approx(expected)
    assert kernel_mse(true.numpy(), true) == 0.0
    with pytest.raises(ValueError, match="kernel shapes"):
        kernel_mse(torch.zeros(5, 5), torch.zeros(7, 7))


def test_axis_sharpness_is_one_for_white_noise_a_quarter_for_smooth_images_and_sees_each_axis_alone():
    noise = torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(0))
    assert axis_sharpness(noise) == pytest.approx((1, 1), abs=0.05)
    ramp = torch.linspace(0, 1, 96)
    smooth = torch.sin(6 * ramp)[None, :, None] * torch.cos(5 * ramp)[None, None, :]  # 1×H×W, low frequencies only
    assert axis_sharpness(smooth.expand(3, 96, 96)) == pytest.approx((0.25, 0.25), abs=0.01)
    along_x = torch.nn.functional.avg_pool2d(noise[None], (1, 5), stride=1, padding=(0, 2))[0]  # blurred along x only
    x, y = axis_sharpness(along_x)
    assert x < 0.6 and y == pytest.approx(1, abs=0.05)


def test_sigma_error_is_in_255_units_and_broadcasts():
    assert sigma_error(10 / 255, 12 / 255) == pytest.approx(2.0)
    true_map = torch.tensor([[10.0, 20.0], [30.0, 40.0]]) / 255
    assert sigma_error(25 / 255, true_map) == pytest.approx((15 + 5 + 5 + 15) / 4)
    assert sigma_error(true_map.numpy(), true_map) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="broadcast"):
        sigma_error(torch.zeros(2, 3), torch.zeros(4, 5))


def test_lpips_is_none_without_the_package(monkeypatch):
    metrics._lpips_model.cache_clear()
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips -> ImportError
    assert lpips_or_none(_image(), _image(1)) is None
    metrics._lpips_model.cache_clear()


def test_lpips_never_builds_a_model_whose_weights_are_missing(monkeypatch, tmp_path):
    fake = types.ModuleType("lpips")
    fake.__file__ = str(tmp_path / "lpips" / "__init__.py")  # no weights/v0.1/alex.pth there

    def refuse(*args, **kwargs):
        raise AssertionError("LPIPS was constructed although its weights are not on disk")

    fake.LPIPS = refuse
    metrics._lpips_model.cache_clear()
    monkeypatch.setitem(sys.modules, "lpips", fake)
    assert lpips_or_none(_image(), _image(1)) is None
    metrics._lpips_model.cache_clear()
