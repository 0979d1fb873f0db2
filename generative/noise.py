"""The model's noise: y = Hx + n1 ⊙ σ (Eq. 25), the pixel-wise Gaussian noise of Eq. 7.

The σ maps that feed it are drawn elsewhere: for training in `training.degradations`, for
the benchmarks (Table 1's maps, Poisson-Gaussian noise) in `benchmarks.cases`. The noise is
drawn on the generator's device (CPU without one) and then moved to the image's device, so a
CPU generator gives the same numbers for CPU and CUDA images.
"""

import torch


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


def _standard_normal(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) samples shaped and typed like x, drawn on the generator's device, on x's device."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)
