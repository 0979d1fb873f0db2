import math

import pytest
import torch

from benchmarks.cases import benchmark_kernel_lambdas
from generative.kernels import axes_from_lambda, gaussian_kernel, lambda_from_axes
from training.degradations import sample_kernel_lambdas


def eq8_kernel(l1sq: float, l2sq: float, rho: float, size: int) -> torch.Tensor:
    """Direct evaluation of Eq. 8 on the grid (rows = j, columns = i), then normalised."""
    r = size // 2
    l1, l2 = math.sqrt(l1sq), math.sqrt(l2sq)
    cov = torch.tensor([[l1sq, l1 * l2 * rho], [l1 * l2 * rho, l2sq]], dtype=torch.float64)
    inv = torch.linalg.inv(cov)
    k = torch.empty(size, size, dtype=torch.float64)
    for row, j in enumerate(range(-r, r + 1)):
        for col, i in enumerate(range(-r, r + 1)):
            s = torch.tensor([i, j], dtype=torch.float64)
            k[row, col] = torch.exp(-0.5 * s @ inv @ s) / (2 * math.pi * l1 * l2 * math.sqrt(1 - rho**2))
    return k / k.sum()


def test_lambda_from_axes_known_values():
    lam = lambda_from_axes(torch.tensor([2.0, 2.0, 2.0]), torch.tensor([1.0, 1.0, 1.0]),
                           torch.tensor([0.0, math.pi / 2, math.pi / 4]))
    expected = torch.tensor([[4.0, 1.0, 0.0], [1.0, 4.0, 0.0], [2.5, 2.5, 0.6]])
    torch.testing.assert_close(lam, expected, atol=1e-6, rtol=1e-6)


def test_lambda_from_axes_accepts_floats_and_keeps_dtype():
    assert lambda_from_axes(1.0, 0.5, 0.3).shape == (1, 3)
    lam = lambda_from_axes(torch.tensor([1.0, 2.0], dtype=torch.float64), 0.5, 0.0)
    assert lam.shape == (2, 3) and lam.dtype == torch.float64


def test_lambda_round_trips_through_axes():
    g = torch.Generator().manual_seed(1)
    l1 = 0.1 + 3 * torch.rand(64, generator=g, dtype=torch.float64)
    l2 = 0.1 + 3 * torch.rand(64, generator=g, dtype=torch.float64)
    theta = math.pi * torch.rand(64, generator=g, dtype=torch.float64)
    lam = lambda_from_axes(l1, l2, theta)
    lam[:4] = lambda_from_axes(torch.full((4,), 1.5, dtype=torch.float64), 1.5, theta[:4])  # l1 == l2
    torch.testing.assert_close(lambda_from_axes(*axes_from_lambda(lam)), lam)


def test_axes_round_trip_when_anisotropic():
    g = torch.Generator().manual_seed(2)
    l2 = 0.1 + 2 * torch.rand(64, generator=g, dtype=torch.float64)
    l1 = l2 + 0.05 + torch.rand(64, generator=g, dtype=torch.float64)
    theta = math.pi * torch.rand(64, generator=g, dtype=torch.float64)
    r1, r2, rt = axes_from_lambda(lambda_from_axes(l1, l2, theta))
    torch.testing.assert_close(r1, l1)
    torch.testing.assert_close(r2, l2)
    # θ and θ ± π describe the same kernel: compare on the circle of period π.
    torch.testing.assert_close(torch.sin(2 * (rt - theta)), torch.zeros_like(theta), atol=1e-9, rtol=0)
    assert (rt >= 0).all() and (rt < math.pi).all()
    assert (r1 >= r2).all()


def test_axes_from_lambda_isotropic_has_finite_gradient():
    lam = torch.tensor([[2.0, 2.0, 0.0]], requires_grad=True)
    l1, l2, theta = axes_from_lambda(lam)
    assert theta.item() == 0.0
    torch.testing.assert_close(torch.cat([l1, l2]), torch.tensor([math.sqrt(2.0)] * 2))
    (l1 + l2 + theta).sum().backward()
    assert torch.isfinite(lam.grad).all()


@pytest.mark.parametrize("l1sq,l2sq,rho,size", [
    (1.0, 1.0, 0.0, 21), (4.0, 1.0, 0.5, 21), (0.5, 6.0, -0.7, 15), (2.5, 2.5, 0.9, 11), (0.16, 0.3, 0.2, 9),
])
def test_gaussian_kernel_matches_eq8(l1sq, l2sq, rho, size):
    k = gaussian_kernel(torch.tensor([[l1sq, l2sq]], dtype=torch.float64),
                        torch.tensor([rho], dtype=torch.float64), size)
    assert k.shape == (1, size, size)
    torch.testing.assert_close(k[0], eq8_kernel(l1sq, l2sq, rho, size))


def test_gaussian_kernel_moments_follow_the_axis_convention():
    # λ1² is the variance along columns (horizontal i), λ2² along rows (vertical j).
    lam2, rho = torch.tensor([[3.0, 1.0]], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    k = gaussian_kernel(lam2, rho)[0]
    offsets = torch.arange(-10, 11, dtype=torch.float64)
    j, i = offsets.view(-1, 1), offsets.view(1, -1)
    moments = torch.stack([(k * i * i).sum(), (k * j * j).sum(), (k * i * j).sum()])
    expected = torch.tensor([3.0, 1.0, 0.5 * math.sqrt(3.0)], dtype=torch.float64)
    torch.testing.assert_close(moments, expected, rtol=1e-4, atol=0)  # up to grid discretisation


def test_gaussian_kernel_batch_sums_to_one():
    lam = sample_kernel_lambdas(8, 4, torch.Generator().manual_seed(0))
    k = gaussian_kernel(lam[:, :2], lam[:, 2])
    assert k.shape == (8, 21, 21)
    torch.testing.assert_close(k.sum(dim=(1, 2)), torch.ones(8))


def test_tiny_width_gives_a_delta_with_finite_gradient():
    lam2 = torch.tensor([[1e-4, 1e-4], [1e-4, 4.0], [0.0, 0.0]], requires_grad=True)
    rho = torch.tensor([0.0, 0.3, 1.0], requires_grad=True)
    k = gaussian_kernel(lam2, rho, size=7)
    assert torch.isfinite(k).all()
    delta = torch.zeros(7, 7)
    delta[3, 3] = 1.0
    torch.testing.assert_close(k[0], delta)
    torch.testing.assert_close(k[2], delta)
    (k * torch.randn(3, 7, 7)).sum().backward()
    assert torch.isfinite(lam2.grad).all() and torch.isfinite(rho.grad).all()
    assert lam2.grad[1, 1] != 0 and rho.grad[1] != 0


def test_gaussian_kernel_rejects_bad_input():
    with pytest.raises(ValueError):
        gaussian_kernel(torch.ones(1, 2), torch.zeros(1), size=20)
    with pytest.raises(ValueError):
        gaussian_kernel(torch.ones(1, 3), torch.zeros(1))
    with pytest.raises(ValueError):
        gaussian_kernel(torch.ones(2, 2), torch.zeros(3))


def test_gradient_flows_from_kernel_to_axes():
    l1 = torch.tensor([1.5, 2.0], requires_grad=True)
    theta = torch.tensor([0.3, 2.0], requires_grad=True)
    lam = lambda_from_axes(l1, 0.7, theta)
    k = gaussian_kernel(lam[:, :2], lam[:, 2], size=9)
    (k[:, 2:4, 5:7]).sum().backward()
    assert torch.isfinite(l1.grad).all() and (l1.grad != 0).all() and (theta.grad != 0).all()


@pytest.mark.gpu
def test_kernel_on_cuda_matches_cpu():
    lam = benchmark_kernel_lambdas(4)
    k_gpu = gaussian_kernel(lam[:, :2].cuda(), lam[:, 2].cuda())
    assert k_gpu.device.type == "cuda"
    torch.testing.assert_close(k_gpu.cpu(), gaussian_kernel(lam[:, :2], lam[:, 2]))
