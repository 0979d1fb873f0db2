"""Anisotropic Gaussian blur kernels g(Λ) (Eq. 8) and their parameterisations.

A kernel is described either by its principal axes (l1, l2, θ) (Eq. 27) or by the paper's
Λ = (λ1², λ2², ρ), stored as a B×3 tensor in that column order. Coordinates follow Eq. 8:
S = (i, j) with i the horizontal (column) offset and j the vertical (row) offset, so λ1² is
the variance along the columns and λ2² along the rows. θ rotates the l1 axis from the +i
(rightward) direction towards the +j (downward) direction.
"""

import math

import torch

TEST_KERNEL_NAMES = ("iso0.4", "iso0.6", "iso0.8", "aniso1", "aniso2", "aniso3", "aniso4")
ISOTROPIC = slice(0, 3)
ANISOTROPIC = slice(3, 7)

MIN_TRAINING_WIDTH = 0.1
_MIN_LAMBDA2 = 1e-6
_MAX_ABS_RHO = 0.999


def lambda_from_axes(l1, l2, theta) -> torch.Tensor:
    """Λ = (λ1², λ2², ρ) of Σ = U diag(l1², l2²) Uᵀ, U the rotation by θ (Eq. 27).

    l1, l2, theta: tensors of shape B (or python floats / 0-d tensors, broadcast together).
    Returns a B×3 tensor (Σ11, Σ22, Σ12/√(Σ11Σ22)).
    """
    like = next((v for v in (l1, l2, theta) if isinstance(v, torch.Tensor)), None)
    floating = like is not None and like.is_floating_point()
    dtype = like.dtype if floating else torch.get_default_dtype()
    device = like.device if like is not None else None
    l1, l2, theta = torch.broadcast_tensors(
        *(torch.atleast_1d(torch.as_tensor(v, dtype=dtype, device=device)) for v in (l1, l2, theta))
    )
    cos, sin = torch.cos(theta), torch.sin(theta)
    v1, v2 = l1**2, l2**2
    s11 = v1 * cos**2 + v2 * sin**2
    s22 = v1 * sin**2 + v2 * cos**2
    s12 = (v1 - v2) * sin * cos
    rho = s12 / torch.sqrt(s11 * s22)
    return torch.stack((s11, s22, rho), dim=-1)


def axes_from_lambda(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of `lambda_from_axes`: Λ (B×3) -> (l1, l2, θ), each of shape B.

    l1 >= l2 and θ ∈ [0, π). For an isotropic kernel (l1 == l2) θ is undefined; 0 is returned.
    """
    if lam.dim() != 2 or lam.shape[-1] != 3:
        raise ValueError(f"lam must be B×3 (λ1², λ2², ρ), got shape {tuple(lam.shape)}")
    s11, s22, rho = lam.unbind(-1)
    s12 = rho * torch.sqrt(s11 * s22)
    half_diff = (s11 - s22) / 2
    tiny = torch.finfo(lam.dtype).tiny
    radius = torch.sqrt(torch.clamp_min(half_diff**2 + s12**2, tiny))
    mean = (s11 + s22) / 2
    l1 = torch.sqrt(mean + radius)
    l2 = torch.sqrt(torch.clamp_min(mean - radius, tiny))
    # Σ11 − Σ22 = (l1² − l2²) cos 2θ and 2Σ12 = (l1² − l2²) sin 2θ; guard atan2(0, 0).
    isotropic = (half_diff == 0) & (s12 == 0)
    safe_x = torch.where(isotropic, torch.ones_like(half_diff), half_diff)
    theta = torch.where(isotropic, torch.zeros_like(half_diff), torch.atan2(s12, safe_x) / 2)
    theta = torch.remainder(theta, math.pi)
    return l1, l2, theta


def gaussian_kernel(lambda2: torch.Tensor, rho: torch.Tensor, size: int = 21) -> torch.Tensor:
    """Normalised anisotropic Gaussian kernels g(λ1², λ2², ρ) of Eq. 8.

    lambda2: B×2 (λ1², λ2²); rho: B. Returns B×size×size, each summing to 1, with
    kernel[b, j + r, i + r] = k_ij (rows = vertical offset j, columns = horizontal offset i).
    The normalisation is a softmax of the exponent over the grid, so the 1/(2πλ1λ2√(1−ρ²))
    factor cancels and tiny widths give a delta without NaN. Inside, λ² is clamped to
    >= 1e-6 and |ρ| to <= 0.999.
    """
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd integer, got {size!r}")
    if lambda2.dim() != 2 or lambda2.shape[-1] != 2:
        raise ValueError(f"lambda2 must be B×2 (λ1², λ2²), got shape {tuple(lambda2.shape)}")
    if rho.shape != lambda2.shape[:1]:
        raise ValueError(f"rho must have shape {tuple(lambda2.shape[:1])}, got {tuple(rho.shape)}")
    r = size // 2
    offsets = torch.arange(-r, r + 1, dtype=lambda2.dtype, device=lambda2.device)
    j = offsets.view(1, size, 1)
    i = offsets.view(1, 1, size)
    var = torch.clamp_min(lambda2, _MIN_LAMBDA2)
    v1 = var[:, 0].view(-1, 1, 1)
    v2 = var[:, 1].view(-1, 1, 1)
    rho = torch.clamp(rho, -_MAX_ABS_RHO, _MAX_ABS_RHO).view(-1, 1, 1)
    # Sᵀ Σ⁻¹ S for Σ = [[λ1², λ1λ2ρ], [λ1λ2ρ, λ2²]] (Eq. 8).
    quad = (i**2 / v1 - 2 * rho * i * j / torch.sqrt(v1 * v2) + j**2 / v2) / (1 - rho**2)
    return torch.softmax((-0.5 * quad).flatten(1), dim=-1).view(-1, size, size)


def test_kernel_lambdas(scale: int) -> torch.Tensor:
    """Λ (7×3) of the paper's 7 SR test kernels at scale s (Tables 5, 15, 16), in the order
    of TEST_KERNEL_NAMES: isotropic widths 0.4s, 0.6s, 0.8s, then the anisotropic
    (l1, l2, θ) = (0.4s, 0.2s, 0), (0.6s, 0.3s, 0.75π), (0.8s, 0.4s, 0.25π), (0.8s, 0.4s, 0.5π).
    """
    _check_scale(scale)
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


test_kernel_lambdas.__test__ = False  # not a pytest test, despite its name


def sample_kernel_lambdas(
    batch: int, scale: int, generator: torch.Generator | None = None, *, device=None
) -> torch.Tensor:
    """Random training kernels as Λ (B×3), following Eq. 27: l1, l2 ~ U[0.1, s], θ ~ U[0, π).

    The paper draws l1, l2 from (0, s]; the lower bound MIN_TRAINING_WIDTH = 0.1 keeps
    away from a degenerate zero-width kernel (at 0.1 the kernel is already a delta).
    Samples are drawn on the generator's device (CPU without one) and moved to `device`.
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    _check_scale(scale)
    gen_device = generator.device if generator is not None else None
    u = torch.rand(batch, 3, generator=generator, device=gen_device, dtype=torch.float64)
    widths = MIN_TRAINING_WIDTH + (scale - MIN_TRAINING_WIDTH) * u[:, :2]
    lam = lambda_from_axes(widths[:, 0], widths[:, 1], math.pi * u[:, 2])
    return lam.to(dtype=torch.get_default_dtype(), device=device)


def _check_scale(scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
