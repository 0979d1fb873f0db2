"""Classical baselines for the benchmark tables: bicubic SR, BM3D, NLM, a σ estimator.

Images are float tensors in [0, 1] scale; each function says its shape. Results come back
on the input's device and dtype. Noise levels σ are standard deviations in [0, 1] scale
(σ = 25/255 for "σ = 25"). The denoisers run on the CPU in numpy (skimage, bm3d).
"""

from __future__ import annotations

import importlib

import numpy as np
import torch
import torch.nn.functional as F
from skimage.restoration import denoise_nl_means, estimate_sigma

_BM3D_MISSING = (
    "the BM3D baseline needs the optional 'bm3d' package: pip install virnet-pyro[bench]"
)


def identity(y: torch.Tensor) -> torch.Tensor:
    """The "do nothing" baseline: returns ``y`` itself (any shape)."""
    return y


def bicubic_upsample(y: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling B×C×h×w -> B×C×(h·s)×(w·s), clamped to [0, 1].

    torch's bicubic (a = −0.75, like MATLAB's imresize; align_corners=False). Borders are
    replicated, whereas imresize reflects, so the outermost pixels can differ slightly.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    if y.ndim != 4:
        raise ValueError(f"bicubic_upsample expects B×C×h×w, got shape {tuple(y.shape)}")
    size = (y.shape[-2] * scale, y.shape[-1] * scale)
    return F.interpolate(y, size=size, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


def _to_hwc(y: torch.Tensor) -> np.ndarray:
    if y.ndim != 3:
        raise ValueError(f"expected one C×H×W image, got shape {tuple(y.shape)}")
    return y.detach().to(device="cpu", dtype=torch.float64).permute(1, 2, 0).numpy()


def _from_hwc(x: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    x = x.reshape(*x.shape[:2], -1)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).to(like)


def _import_bm3d():
    try:
        return importlib.import_module("bm3d")
    except ImportError as err:
        raise ImportError(_BM3D_MISSING) from err


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package can be imported."""
    try:
        _import_bm3d()
    except ImportError:
        return False
    return True


def bm3d_denoise(y: torch.Tensor, sigma: float | torch.Tensor | np.ndarray) -> torch.Tensor:
    """BM3D given the true noise level: C×H×W -> C×H×W (C = 3: CBM3D, C = 1: BM3D).

    sigma: the noise std in [0, 1] scale, a float or an H×W σ map (tensor or numpy). BM3D
    assumes i.i.d. noise, so a map is replaced by its mean. Uses ``bm3d.bm3d_rgb``
    (opponent colour space, the package's default profile) for RGB. The output is not
    clipped. Needs the optional ``bm3d`` package (``pip install virnet-pyro[bench]``) and
    raises ImportError without it.
    """
    bm3d = _import_bm3d()
    if y.ndim != 3 or y.shape[0] not in (1, 3):
        raise ValueError(f"bm3d_denoise expects a 1×H×W or 3×H×W image, got {tuple(y.shape)}")
    if not isinstance(sigma, (int, float)):
        sigma = torch.as_tensor(sigma)
        if sigma.ndim != 0 and tuple(sigma.shape) != tuple(y.shape[-2:]):
            shape = tuple(sigma.shape)
            raise ValueError(f"sigma map must be H×W = {tuple(y.shape[-2:])}, got {shape}")
        sigma = float(sigma.mean())
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    image = _to_hwc(y)
    if y.shape[0] == 3:
        denoised = bm3d.bm3d_rgb(image, sigma)
    else:
        denoised = bm3d.bm3d(image[..., 0], sigma)
    return _from_hwc(np.asarray(denoised), y)


def nlm_denoise(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Non-local means (skimage) given the noise level: C×H×W -> C×H×W.

    sigma: noise std in [0, 1] scale. Settings of skimage's NLM example: 5×5 patches,
    search distance 6 (13×13 window), fast mode, filter strength h = 0.8·σ, and σ passed to
    skimage so that the expected noise contribution 2σ² is removed from patch distances.
    Colour images are filtered jointly (patch distances over all channels). Not clipped.
    """
    if y.ndim != 3:
        raise ValueError(f"nlm_denoise expects a C×H×W image, got shape {tuple(y.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    image = _to_hwc(y)
    denoised = denoise_nl_means(
        image,
        h=0.8 * sigma,
        sigma=sigma,
        patch_size=5,
        patch_distance=6,
        fast_mode=True,
        channel_axis=-1,
    )
    return _from_hwc(denoised, y)


def estimate_sigma_skimage(y: torch.Tensor) -> float:
    """Noise std of a C×H×W image in [0, 1] scale, by skimage's wavelet (MAD) estimator.

    The per-channel estimates are averaged. Assumes i.i.d. Gaussian noise (a baseline for
    SNet's σ maps). Needs PyWavelets, which skimage imports for this estimator.
    """
    return float(estimate_sigma(_to_hwc(y), channel_axis=-1, average_sigmas=True))
