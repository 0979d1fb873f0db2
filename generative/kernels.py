"""Anisotropic Gaussian blur kernels g(Λ) (Eq. 8) and their parameterisations.

A kernel is described either by its principal axes (l1, l2, θ) (Eq. 27) or by the paper's
Λ = (λ1², λ2², ρ), stored as a B×3 tensor in that column order. Coordinates follow Eq. 8:
S = (i, j) with i the horizontal (column) offset and j the vertical (row) offset, so λ1² is
the variance along the columns and λ2² along the rows. θ rotates the l1 axis from the +i
(rightward) direction towards the +j (downward) direction.
"""

import math

import torch

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
