"""The benchmarks' fixed cases: the paper's 7 SR test kernels and Table 1's σ maps."""

import math

import numpy as np
import pytest
import torch

from benchmarks.cases import ANISOTROPIC, BENCHMARK_KERNEL_NAMES, ISOTROPIC, benchmark_kernel_lambdas, table1_sigma_map
from generative.kernels import axes_from_lambda


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_benchmark_kernels_are_the_papers_seven(scale):
    lam = benchmark_kernel_lambdas(scale)
    assert lam.shape == (7, 3) and len(BENCHMARK_KERNEL_NAMES) == 7
    assert len(range(7)[ANISOTROPIC]) == 4 and len(range(7)[ISOTROPIC]) == 3
    widths = torch.tensor([0.4, 0.6, 0.8]) * scale
    torch.testing.assert_close(lam[ISOTROPIC], torch.stack([widths**2, widths**2, torch.zeros(3)], 1))
    l1, l2, theta = axes_from_lambda(lam[ANISOTROPIC].double())
    torch.testing.assert_close(l1, torch.tensor([0.4, 0.6, 0.8, 0.8], dtype=torch.float64) * scale)
    torch.testing.assert_close(l2, torch.tensor([0.2, 0.3, 0.4, 0.4], dtype=torch.float64) * scale)
    torch.testing.assert_close(theta, torch.tensor([0.0, 0.75, 0.25, 0.5], dtype=torch.float64) * math.pi,
                               atol=1e-5, rtol=0)


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
