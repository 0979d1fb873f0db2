import pytest
import torch
import torch.nn.functional as F

from benchmarks.cases import benchmark_kernel_lambdas
from generative.kernels import gaussian_kernel, lambda_from_axes
from generative.operators import blur, degrade, downsample
from guides.guide import upsample_nearest


def random_kernels(batch: int, size: int = 7, seed: int = 0) -> torch.Tensor:
    """Normalised random (not symmetric) kernels, B×K×K."""
    k = torch.rand(batch, size, size, generator=torch.Generator().manual_seed(seed))
    return k / k.sum(dim=(1, 2), keepdim=True)


@pytest.mark.parametrize("mode", ["direct", "bicubic"])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(24, 24), (25, 30)])
def test_shapes(mode, scale, size):
    h, w = size
    x = torch.rand(2, 3, h, w)
    lam = benchmark_kernel_lambdas(scale)[3:5]
    y = degrade(x, gaussian_kernel(lam[:, :2], lam[:, 2], 9), scale, mode)
    assert y.shape == (2, 3, h // scale, w // scale)
    assert upsample_nearest(y, scale).shape == (2, 3, (h // scale) * scale, (w // scale) * scale)


def test_constant_image_stays_constant():
    x = torch.full((2, 3, 16, 20), 0.37)
    y = blur(x, random_kernels(2))
    torch.testing.assert_close(y, x)
    for mode in ("direct", "bicubic"):
        torch.testing.assert_close(degrade(x, random_kernels(2), 3, mode), torch.full((2, 3, 5, 6), 0.37))


def test_delta_kernel_and_no_kernel_are_identity():
    x = torch.rand(2, 3, 12, 12)
    delta = torch.zeros(2, 5, 5)
    delta[:, 2, 2] = 1.0
    torch.testing.assert_close(blur(x, delta), x)
    torch.testing.assert_close(degrade(x, None, 1), x)
    torch.testing.assert_close(degrade(x, delta, 2), x[..., ::2, ::2])


def test_impulse_image_gives_the_kernel_itself():
    k = random_kernels(2, size=5)
    x = torch.zeros(2, 1, 11, 11)
    x[:, :, 5, 5] = 1.0
    # Convolution, not correlation: (δ ∗ k) at offset (u, v) from the impulse is k[u, v].
    torch.testing.assert_close(blur(x, k)[:, 0, 3:8, 3:8], k)


def test_blur_pads_by_reflection():
    x = torch.zeros(1, 1, 6, 6)
    x[..., 0, 0] = 1.0  # a corner impulse
    k = torch.zeros(1, 3, 3)
    k[0, 2, 2] = 1.0  # offset (+1, +1): shifts the image by one pixel down and right
    y = blur(x, k)
    assert y[0, 0, 1, 1].item() == pytest.approx(1.0, abs=1e-6)  # exact up to the FFT's rounding
    # reflected row/column -1 is row/column 1 (zero here), so nothing enters at the border.
    assert y[0, 0, 0].abs().sum() < 1e-6 and y[0, 0, :, 0].abs().sum() < 1e-6
    x2 = torch.zeros(1, 1, 6, 6)
    x2[..., 1, 1] = 1.0
    assert blur(x2, k)[0, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-6)  # pixel (1, 1) is mirrored to (-1, -1)


def test_blur_equals_the_direct_reflect_padded_convolution():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 37, generator=generator, dtype=torch.float64)
    k = torch.rand(2, 21, 21, generator=generator, dtype=torch.float64)
    weight = k.flip(-1, -2).repeat_interleave(3, dim=0).unsqueeze(1)
    direct = F.conv2d(F.pad(x.reshape(1, 6, 40, 37), (10,) * 4, mode="reflect"), weight, groups=6).view(2, 3, 40, 37)
    assert torch.allclose(blur(x, k), direct, atol=1e-12)
    assert blur(x.bfloat16(), k.float()).dtype == torch.bfloat16


def test_direct_downsample_picks_upper_left_pixels():
    x = torch.arange(7 * 8, dtype=torch.float32).view(1, 1, 7, 8)
    expected = torch.tensor([[0.0, 3.0], [24.0, 27.0]]).view(1, 1, 2, 2)
    torch.testing.assert_close(downsample(x, 3), expected)
    torch.testing.assert_close(downsample(x, 1), x)


def test_bicubic_downsample_of_a_linear_ramp_samples_block_centres():
    # Antialiased bicubic preserves linear functions away from the borders: output k sits at
    # input column 4k + 1.5 (the centre of its 4×4 block); the kernel reaches 8 columns out.
    x = torch.arange(40, dtype=torch.float64).view(1, 1, 1, 40).expand(1, 1, 12, 40)
    y = downsample(x, 4, "bicubic")
    assert y.shape == (1, 1, 3, 10)
    centres = 4 * torch.arange(2, 8, dtype=torch.float64) + 1.5
    torch.testing.assert_close(y[0, 0, 1, 2:8], centres)


def test_one_kernel_per_batch_element():
    x = torch.rand(1, 2, 16, 16).expand(3, 2, 16, 16)
    kernels = random_kernels(3, seed=4)
    y = blur(x, kernels)
    for b in range(3):
        torch.testing.assert_close(y[b:b + 1], blur(x[b:b + 1], kernels[b:b + 1]))
    assert not torch.allclose(y[0], y[1])
    torch.testing.assert_close(blur(x, kernels[:1]), blur(x, kernels[:1].expand(3, 7, 7)))


def test_gradient_flows_to_kernel_params_and_image():
    l1 = torch.tensor([1.2, 2.0], requires_grad=True)
    theta = torch.tensor([0.4, 1.1], requires_grad=True)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    for mode in ("direct", "bicubic"):
        lam = lambda_from_axes(l1, 0.6, theta)
        y = degrade(x, gaussian_kernel(lam[:, :2], lam[:, 2], 9), 2, mode)
        grads = torch.autograd.grad((y * torch.rand_like(y)).sum(), (l1, theta, x))
        assert all(torch.isfinite(g).all() and (g != 0).any() for g in grads)


def test_bad_input_raises_value_error():
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError):
        downsample(x, 2, "nearest")
    with pytest.raises(ValueError):
        downsample(x, 0)
    with pytest.raises(ValueError):
        blur(x, torch.ones(1, 4, 4))
    with pytest.raises(ValueError):
        blur(x, torch.ones(1, 21, 21) / 441)  # image too small for reflect padding
    with pytest.raises(ValueError):
        blur(torch.rand(2, 1, 8, 8), torch.ones(3, 3, 3))
    with pytest.raises(ValueError):
        upsample_nearest(torch.rand(8, 8), 2)


def test_upsample_nearest_repeats_blocks():
    y = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    expected = torch.tensor([[1.0, 1.0, 2.0, 2.0]] * 2 + [[3.0, 3.0, 4.0, 4.0]] * 2).view(1, 1, 4, 4)
    torch.testing.assert_close(upsample_nearest(y, 2), expected)
    torch.testing.assert_close(downsample(upsample_nearest(y, 3), 3), y)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["direct", "bicubic"])
def test_cuda_matches_cpu(mode):
    x = torch.rand(2, 3, 24, 24)
    lam = benchmark_kernel_lambdas(3)[3:5]
    k = gaussian_kernel(lam[:, :2], lam[:, 2])
    y_gpu = degrade(x.cuda(), k.cuda(), 3, mode)
    assert y_gpu.device.type == "cuda"
    torch.testing.assert_close(y_gpu.cpu(), degrade(x, k, 3, mode), atol=1e-5, rtol=1e-5)
