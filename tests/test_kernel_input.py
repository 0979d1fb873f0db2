"""KNet's input: y as it is, or its high frequencies without brightness and contrast."""

import pytest
import torch

from guides.guide import GuideConfig
from guides.kernel_input import highpass, kernel_input


def _images():
    return torch.rand(3, 3, 20, 24, generator=torch.Generator().manual_seed(0))


def test_highpass_removes_brightness_and_contrast_and_has_unit_rms():
    y = _images()
    out = highpass(y)
    assert out.shape == y.shape
    torch.testing.assert_close(out.pow(2).mean(dim=(1, 2, 3)), torch.ones(3))
    scaled = 0.3 * y + torch.tensor([0.1, 0.5, 0.7]).view(3, 1, 1, 1)
    torch.testing.assert_close(highpass(scaled), out, atol=1e-4, rtol=1e-4)


def test_highpass_is_y_minus_its_3x3_mean_inside_the_image():
    y = _images()
    residual = y[..., 1:-1, 1:-1] - torch.nn.functional.avg_pool2d(y, 3, stride=1)
    ratio = highpass(y)[..., 1:-1, 1:-1] / residual
    assert torch.allclose(ratio, ratio[:, :1, :1, :1].expand_as(ratio), rtol=1e-3)


def test_a_flat_image_stays_finite_and_raw_is_the_identity():
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert torch.isfinite(highpass(flat)).all()
    y = _images()
    assert kernel_input(y, "raw") is y
    with pytest.raises(ValueError, match="unknown KNet input"):
        kernel_input(y, "edges")
    with pytest.raises(ValueError, match="knet_input"):
        GuideConfig(knet_input="edges")
