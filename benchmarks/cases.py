"""The benchmarks' test cases: the 7 SR test kernels, Table 1's σ maps, Poisson-Gaussian noise.

Fixed degradations that the paper's tables are measured on, as opposed to the random
degradations of training (`training.degradations`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from generative.kernels import lambda_from_axes
from generative.noise import add_gaussian_noise
from generative.operators import check_scale
from training.degradations import check_sizes

BENCHMARK_KERNEL_NAMES = ("iso0.4", "iso0.6", "iso0.8", "aniso1", "aniso2", "aniso3", "aniso4")
ISOTROPIC = slice(0, 3)
ANISOTROPIC = slice(3, 7)
TABLE1_SIGMA_RANGE = (10 / 255, 75 / 255)
TABLE1_BASE_SIZE = 256
TABLE1_CASES = (1, 2, 3)


def benchmark_kernel_lambdas(scale: int) -> torch.Tensor:
    """Λ (7×3) of the paper's 7 SR test kernels at scale s (Tables 5, 15, 16), in the order
    of BENCHMARK_KERNEL_NAMES: isotropic widths 0.4s, 0.6s, 0.8s, then the anisotropic
    (l1, l2, θ) = (0.4s, 0.2s, 0), (0.6s, 0.3s, 0.75π), (0.8s, 0.4s, 0.25π), (0.8s, 0.4s, 0.5π).
    """
    check_scale(scale)
    axes = torch.tensor(
        [
            (0.4, 0.4, 0.0),
            (0.6, 0.6, 0.0),
            (0.8, 0.8, 0.0),
            (0.4, 0.2, 0.0),
            (0.6, 0.3, 0.75 * math.pi),
            (0.8, 0.4, 0.25 * math.pi),
            (0.8, 0.4, 0.5 * math.pi),
        ],
        dtype=torch.float64,
    )
    lam = lambda_from_axes(axes[:, 0] * scale, axes[:, 1] * scale, axes[:, 2])
    return lam.to(torch.get_default_dtype())


def table1_sigma_map(
    case: int, height: int, width: int, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """σ map (H×W, float32) of the non-i.i.d. Case 1, 2 or 3 of Table 1.

    Base maps on a 256×256 grid: (1) MATLAB's peaks(256) on [−3, 3]²; (2) sin(X) + cos(Y),
    X = linspace(1, 10) along columns, Y = linspace(1, 20) along rows; (3) the mean of 64
    density-normalised isotropic Gaussians, one per 32×32 cell (centre uniform in the cell,
    std uniform in [16, 32]), drawn from `rng` (default numpy default_rng(1000)). Each is
    min-max normalised to [10/255, 75/255], then resized to H×W by nearest neighbour.
    """
    if case not in TABLE1_CASES:
        raise ValueError(f"test case must be one of {TABLE1_CASES}, got {case!r}")
    check_sizes(1, height, width)
    n = TABLE1_BASE_SIZE
    if case == 1:
        x, y = np.meshgrid(np.linspace(-3, 3, n), np.linspace(-3, 3, n))
        base = _peaks(x, y)
    elif case == 2:
        x, y = np.meshgrid(np.linspace(1, 10, n), np.linspace(1, 20, n))
        base = np.sin(x) + np.cos(y)
    else:
        base = _gaussian_mixture(np.random.default_rng(1000) if rng is None else rng)
    lo, hi = TABLE1_SIGMA_RANGE
    base = lo + (hi - lo) * (base - base.min()) / (base.max() - base.min())
    rows = np.minimum(((np.arange(height) + 0.5) * n / height).astype(np.int64), n - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * n / width).astype(np.int64), n - 1)
    return torch.from_numpy(base[np.ix_(rows, cols)]).to(torch.float32)


def poisson_gaussian_noise(
    x: torch.Tensor, a: float, b: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signal-dependent noise of variance a·x + b: the heteroscedastic Gaussian
    approximation of Poisson-Gaussian noise (a: Poisson gain, b: Gaussian variance).

    x: B×C×H×W. Returns (y, σ), both B×C×H×W, σ = √max(a·x + b, 0) the true noise level.
    """
    if a < 0 or b < 0:
        raise ValueError(f"a and b must be >= 0, got a={a!r}, b={b!r}")
    sigma = torch.sqrt(torch.clamp_min(a * x + b, 0.0))
    return add_gaussian_noise(x, sigma, generator), sigma


def _peaks(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MATLAB's peaks function."""
    return (
        3 * (1 - x) ** 2 * np.exp(-(x**2) - (y + 1) ** 2)
        - 10 * (x / 5 - x**3 - y**5) * np.exp(-(x**2) - y**2)
        - np.exp(-((x + 1) ** 2) - y**2) / 3
    )


def _gaussian_mixture(rng: np.random.Generator) -> np.ndarray:
    """Mean of 64 density-normalised isotropic Gaussians on the 256×256 grid, one per 32×32
    cell (row-major), centre uniform in the cell, std uniform in [16, 32]."""
    n, cell = TABLE1_BASE_SIZE, 32
    per_side = n // cell
    corners = np.stack(np.meshgrid(np.arange(per_side), np.arange(per_side), indexing="ij"), -1)
    centres = corners.reshape(-1, 2) * cell + rng.uniform(0, cell, size=(per_side**2, 2))
    stds = rng.uniform(16, 32, size=per_side**2)
    grid = np.arange(n, dtype=np.float64)
    dy = grid[None, :, None] - centres[:, 0, None, None]
    dx = grid[None, None, :] - centres[:, 1, None, None]
    var = stds[:, None, None] ** 2
    densities = np.exp(-(dy**2 + dx**2) / (2 * var)) / (2 * math.pi * var)
    return densities.mean(axis=0)
