import sys

import pytest
import torch

from benchmarks.baselines import (
    bicubic_upsample,
    bm3d_available,
    bm3d_denoise,
    estimate_sigma_skimage,
    identity,
    nlm_denoise,
)
from benchmarks.metrics import psnr_rgb


def _smooth_image(size: int = 32) -> torch.Tensor:
    """3×size×size smooth colour ramps in [0.2, 0.8]."""
    ramp = torch.linspace(0.2, 0.8, size, dtype=torch.float64)
    return torch.stack([ramp[:, None].expand(size, size), ramp[None, :].expand(size, size),
                        (ramp[:, None] + ramp[None, :]).expand(size, size) / 2])


def _noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed),
                                   dtype=x.dtype)


def test_identity_returns_its_input():
    y = torch.rand(3, 4, 4)
    assert identity(y) is y


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_bicubic_upsample_shapes_and_range(scale):
    y = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    up = bicubic_upsample(y, scale)
    assert up.shape == (2, 3, 5 * scale, 7 * scale) and up.dtype == y.dtype
    assert up.min() >= 0.0 and up.max() <= 1.0


def test_bicubic_upsample_keeps_constants_and_rejects_bad_input():
    flat = torch.full((1, 1, 4, 4), 0.3)
    assert torch.allclose(bicubic_upsample(flat, 2), torch.full((1, 1, 8, 8), 0.3))
    with pytest.raises(ValueError, match="scale"):
        bicubic_upsample(flat, 0)
    with pytest.raises(ValueError, match="B×C×h×w"):
        bicubic_upsample(flat[0], 2)


def test_nlm_improves_psnr_on_a_noisy_smooth_image():
    x = _smooth_image()
    y = _noisy(x, 25 / 255)
    restored = nlm_denoise(y, 25 / 255)
    assert restored.shape == y.shape and restored.dtype == y.dtype
    assert psnr_rgb(restored, x) > psnr_rgb(y, x) + 3.0


def test_estimate_sigma_skimage_recovers_the_noise_level():
    x = _smooth_image(64)
    assert estimate_sigma_skimage(_noisy(x, 0.1)) == pytest.approx(0.1, rel=0.15)


def test_denoisers_reject_bad_input():
    with pytest.raises(ValueError, match="sigma"):
        nlm_denoise(torch.rand(3, 8, 8), 0.0)
    with pytest.raises(ValueError, match="C×H×W"):
        nlm_denoise(torch.rand(1, 3, 8, 8), 0.1)


def test_bm3d_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d -> ImportError
    assert not bm3d_available()
    with pytest.raises(ImportError, match=r"pip install virnet-pyro\[bench\]"):
        bm3d_denoise(torch.rand(3, 8, 8), 0.1)


@pytest.mark.slow
def test_bm3d_improves_psnr_and_uses_the_mean_of_a_sigma_map():
    pytest.importorskip("bm3d")
    assert bm3d_available()
    x = _smooth_image()
    y = _noisy(x, 25 / 255)
    restored = bm3d_denoise(y, 25 / 255)
    assert restored.shape == y.shape and restored.dtype == y.dtype
    assert psnr_rgb(restored, x) > psnr_rgb(y, x) + 3.0
    sigma_map = torch.linspace(15, 35, 32 * 32).reshape(32, 32) / 255  # mean 25/255
    assert torch.allclose(bm3d_denoise(y, sigma_map), restored)
    with pytest.raises(ValueError, match="sigma map"):
        bm3d_denoise(y, torch.ones(16, 16))
