"""Noise synthesis: σ maps for training and for the Table 1 test cases, and noisy images.

σ maps are B×1×H×W (one σ shared by all channels). Random draws take an optional
torch.Generator; they are made on the generator's device (CPU without one) and then moved
to the target device, so a CPU generator gives the same numbers for CPU and CUDA images.
"""

import math

import numpy as np
import torch

TRAIN_SIGMA_MAX = 75 / 255
TRAIN_SIGMA_GAP = 5 / 255
TEST_SIGMA_RANGE = (10 / 255, 75 / 255)
TEST_BASE_SIZE = 256
TEST_CASES = (1, 2, 3)


def training_sigma_map(
    batch: int, height: int, width: int, generator: torch.Generator | None = None, *, device=None
) -> torch.Tensor:
    """Non-i.i.d. training σ maps (B×1×H×W): one 2-D Gaussian bump per map.

    Centre uniform in the patch; std = u·H along rows and u·W along columns with
    u ~ U[1/4, 3/4] (an isotropic bump of std in [P/4, 3P/4] for a P×P patch). Each bump is
    min-max normalised to [lo, hi], with lo, hi ~ U[0, 75/255] sorted and hi += 5/255.
    """
    _check_sizes(batch, height, width)
    u = _uniform((batch, 6), generator)
    centre_y, centre_x = u[:, 0] * height, u[:, 1] * width
    spread = 0.25 + 0.5 * u[:, 2]
    lo, hi = torch.sort(u[:, 3:5] * TRAIN_SIGMA_MAX, dim=1).values.unbind(1)
    hi = hi + TRAIN_SIGMA_GAP
    rows = torch.arange(height, dtype=u.dtype, device=u.device).view(1, height, 1)
    cols = torch.arange(width, dtype=u.dtype, device=u.device).view(1, 1, width)
    exponent = ((rows - centre_y.view(-1, 1, 1)) / (spread.view(-1, 1, 1) * height)) ** 2
    exponent = exponent + ((cols - centre_x.view(-1, 1, 1)) / (spread.view(-1, 1, 1) * width)) ** 2
    bump = torch.exp(-0.5 * exponent).flatten(1)
    low, high = bump.min(dim=1, keepdim=True).values, bump.max(dim=1, keepdim=True).values
    unit = (bump - low) / (high - low).clamp_min(torch.finfo(bump.dtype).tiny)
    sigma = lo.view(-1, 1) + (hi - lo).view(-1, 1) * unit
    return sigma.view(batch, 1, height, width).to(device)


def iid_sigma_map(
    batch: int,
    height: int,
    width: int,
    max_sigma: float = TRAIN_SIGMA_MAX,
    generator: torch.Generator | None = None,
    *,
    device=None,
    min_sigma: float = 0.0,
) -> torch.Tensor:
    """I.i.d. σ maps (B×1×H×W): one σ ~ U[min_sigma, max_sigma] per image, constant over it."""
    _check_sizes(batch, height, width)
    if not 0 <= min_sigma <= max_sigma:
        raise ValueError(f"need 0 <= min_sigma <= max_sigma, got {min_sigma!r} and {max_sigma!r}")
    sigma = min_sigma + _uniform((batch, 1, 1, 1), generator) * (max_sigma - min_sigma)
    return sigma.expand(batch, 1, height, width).to(device)


def test_sigma_map(
    case: int, height: int, width: int, rng: np.random.Generator | None = None
) -> torch.Tensor:
    """σ map (H×W, float32) of the non-i.i.d. test Case 1, 2 or 3 of Table 1.

    Base maps on a 256×256 grid: (1) MATLAB's peaks(256) on [−3, 3]²; (2) sin(X) + cos(Y),
    X = linspace(1, 10) along columns, Y = linspace(1, 20) along rows; (3) the mean of 64
    density-normalised isotropic Gaussians, one per 32×32 cell (centre uniform in the cell,
    std uniform in [16, 32]), drawn from `rng` (default numpy default_rng(1000)). Each is
    min-max normalised to [10/255, 75/255], then resized to H×W by nearest neighbour.
    """
    if case not in TEST_CASES:
        raise ValueError(f"test case must be one of {TEST_CASES}, got {case!r}")
    _check_sizes(1, height, width)
    n = TEST_BASE_SIZE
    if case == 1:
        x, y = np.meshgrid(np.linspace(-3, 3, n), np.linspace(-3, 3, n))
        base = _peaks(x, y)
    elif case == 2:
        x, y = np.meshgrid(np.linspace(1, 10, n), np.linspace(1, 20, n))
        base = np.sin(x) + np.cos(y)
    else:
        base = _gaussian_mixture(np.random.default_rng(1000) if rng is None else rng)
    lo, hi = TEST_SIGMA_RANGE
    base = lo + (hi - lo) * (base - base.min()) / (base.max() - base.min())
    rows = np.minimum(((np.arange(height) + 0.5) * n / height).astype(np.int64), n - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * n / width).astype(np.int64), n - 1)
    return torch.from_numpy(base[np.ix_(rows, cols)]).to(torch.float32)


test_sigma_map.__test__ = False  # not a pytest test, despite its name


def add_gaussian_noise(
    x: torch.Tensor, sigma, generator: torch.Generator | None = None
) -> torch.Tensor:
    """y = x + n1 ⊙ σ, n1 ~ N(0, I) (Eq. 25), without clipping.

    x: B×C×H×W; sigma: B×1×H×W or anything broadcastable to x (a float, B×1×1×1, ...).
    """
    if x.dim() != 4:
        raise ValueError(f"image must be B×C×H×W, got shape {tuple(x.shape)}")
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if torch.broadcast_shapes(sigma.shape, x.shape) != x.shape:
        raise ValueError(
            f"sigma of shape {tuple(sigma.shape)} does not broadcast to the image {tuple(x.shape)}"
        )
    return x + _standard_normal(x, generator) * sigma


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
    n, cell = TEST_BASE_SIZE, 32
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


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) samples of the default dtype, on the generator's device (CPU without one)."""
    device = generator.device if generator is not None else None
    return torch.rand(shape, generator=generator, device=device)


def _standard_normal(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) samples shaped and typed like x, drawn on the generator's device, on x's device."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def _check_sizes(batch: int, height: int, width: int) -> None:
    for name, value in (("batch", batch), ("height", height), ("width", width)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
