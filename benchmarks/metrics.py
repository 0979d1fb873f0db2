"""Image-quality and estimation metrics for the benchmark protocols.

Image inputs are float ``torch.Tensor`` or ``numpy.ndarray`` in [0, 1] scale, channel-first:
C×H×W (one image) or B×C×H×W (a batch; the metric is the mean of the per-image values, the
usual "average over the test set" protocol when a batch holds the whole set). Values outside
[0, 1] are allowed and are clipped where the protocol quantises to uint8.

Protocols:
- Tables 1-2 (denoising): PSNR/SSIM on RGB images quantised to uint8, round(clip(x)·255).
- Tables 5, 15, 16 (SR): PSNR/SSIM on the Y channel of YCbCr (MATLAB ``rgb2ycbcr``) with a
  border crop; DESIGN.md: a crop of s² pixels reproduces the published bicubic numbers.
- SSIM follows Wang et al.'s MATLAB reference: 11×11 Gaussian window with σ = 1.5,
  K1 = 0.01, K2 = 0.03, population (not sample) covariance, data range 255; RGB SSIM is
  the mean of the per-channel SSIMs.
"""

from __future__ import annotations

import functools
import importlib
import math
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

# MATLAB rgb2ycbcr luma row for RGB in [0, 1], giving Y in [16, 235] (ITU-R BT.601).
_Y_OFFSET = 16.0
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])

_SSIM_SETTINGS = {
    "data_range": 255,
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
}


def _as_numpy(x) -> np.ndarray:
    if torch.is_tensor(x):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _as_batch(restored, target) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 numpy arrays, B×C×H×W."""
    a, b = _as_numpy(restored), _as_numpy(target)
    if a.shape != b.shape:
        raise ValueError(f"restored and target shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4:
        raise ValueError(f"expected C×H×W or B×C×H×W images, got shape {a.shape}")
    return a, b


def _quantise(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 levels round(clip(x)·255)."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _psnr_255(restored: np.ndarray, target: np.ndarray) -> float:
    if np.array_equal(restored, target):
        return math.inf
    return float(peak_signal_noise_ratio(target, restored, data_range=255))


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def psnr_rgb(restored, target) -> float:
    """PSNR in dB of uint8-quantised RGB images (protocol of Tables 1-2).

    restored, target: C×H×W or B×C×H×W in [0, 1] (tensor or numpy). Both are quantised to
    round(clip(x)·255) and compared with data range 255. Identical quantised images give
    ``math.inf``; a batch gives the mean of the per-image PSNRs.
    """
    a, b = _as_batch(restored, target)
    return _mean([_psnr_255(_quantise(r), _quantise(t)) for r, t in zip(a, b)])


def ssim_rgb(restored, target) -> float:
    """SSIM of uint8-quantised RGB images (protocol of Tables 1-2).

    restored, target: C×H×W or B×C×H×W in [0, 1] (tensor or numpy). Settings in the module
    docstring (Gaussian 11×11 window, σ = 1.5, data range 255, mean over channels); a batch
    gives the mean of the per-image SSIMs.
    """
    a, b = _as_batch(restored, target)
    values = [
        structural_similarity(
            _quantise(t).transpose(1, 2, 0).astype(np.float64),
            _quantise(r).transpose(1, 2, 0).astype(np.float64),
            channel_axis=-1,
            **_SSIM_SETTINGS,
        )
        for r, t in zip(a, b)
    ]
    return _mean(values)


def rgb_to_y(x):
    """BT.601 luma as MATLAB ``rgb2ycbcr``: Y = 16 + 65.481 R + 128.553 G + 24.966 B.

    x: 3×H×W or B×3×H×W RGB in [0, 1] (tensor or numpy). Returns Y in [0, 255] units (white
    235, black 16), unrounded, as 1×H×W or B×1×H×W of the input's kind (a tensor keeps its
    device and dtype). Divide by 255 for MATLAB's double-input scale.
    """
    channel_dim = x.ndim - 3
    if x.ndim not in (3, 4) or x.shape[channel_dim] != 3:
        shape = tuple(x.shape)
        raise ValueError(f"rgb_to_y expects 3×H×W or B×3×H×W RGB images, got shape {shape}")
    if torch.is_tensor(x):
        weights = torch.as_tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).reshape(3, 1, 1)
        return _Y_OFFSET + (x * weights).sum(dim=channel_dim, keepdim=True)
    weighted = np.asarray(x, dtype=np.float64) * _Y_WEIGHTS.reshape(3, 1, 1)
    return _Y_OFFSET + weighted.sum(axis=channel_dim, keepdims=True)

def _y_channels(restored, target, crop: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image: (restored Y, target Y) as H'×W' uint8-level arrays after the border crop.

    As in the public SR test code: RGB is quantised to uint8 first, and the Y of a uint8
    image is rounded to integer levels (MATLAB rgb2ycbcr on uint8 input).
    """
    if isinstance(crop, bool) or not isinstance(crop, int) or crop < 0:
        raise ValueError(f"crop must be a non-negative int, got {crop!r}")
    a, b = _as_batch(restored, target)
    height, width = a.shape[-2:]
    if 2 * crop >= min(height, width):
        raise ValueError(f"crop {crop} leaves nothing of a {height}×{width} image")
    window = (slice(crop, height - crop), slice(crop, width - crop))
    pairs = []
    for r, t in zip(a, b):
        y_r = np.round(rgb_to_y(_quantise(r) / 255.0))[0][window]
        y_t = np.round(rgb_to_y(_quantise(t) / 255.0))[0][window]
        pairs.append((y_r, y_t))
    return pairs


def psnr_y(restored, target, crop: int) -> float:
    """PSNR in dB on the Y channel with a border crop of ``crop`` pixels (SR protocol).

    restored, target: 3×H×W or B×3×H×W RGB in [0, 1] (tensor or numpy). Y as in
    ``rgb_to_y`` from uint8-quantised RGB, rounded, data range 255. Identical -> ``math.inf``.
    """
    return _mean([_psnr_255(y_r, y_t) for y_r, y_t in _y_channels(restored, target, crop)])


def ssim_y(restored, target, crop: int) -> float:
    """SSIM on the Y channel with a border crop of ``crop`` pixels (SR protocol).

    restored, target: 3×H×W or B×3×H×W RGB in [0, 1] (tensor or numpy). Y as in ``psnr_y``;
    SSIM settings in the module docstring.
    """
    pairs = _y_channels(restored, target, crop)
    return _mean([structural_similarity(y_t, y_r, **_SSIM_SETTINGS) for y_r, y_t in pairs])


def kernel_mse(estimated, true) -> float:
    """Mean squared error between two blur kernels (Table 9).

    estimated, true: K×K (tensor or numpy), same shape; the kernels are compared as given
    (normalise them to sum 1 beforehand if the protocol asks for it).
    """
    a, b = _as_numpy(estimated), _as_numpy(true)
    if a.shape != b.shape:
        raise ValueError(f"kernel shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean((a - b) ** 2))


def axis_sharpness(image) -> tuple[float, float]:
    """(along x, along y): how much of a C×H×W image's detail is at the pixel scale along
    each axis, the mean squared 1-pixel difference of its channel mean over the mean squared
    2-pixel difference. 1/4 for a smooth (blurred) image, 1 for white noise; a photo's own
    softness (defocus, resampling) lowers it, fine texture raises it."""
    luma = _as_numpy(image).astype(np.float64).mean(axis=0)
    values = []
    for rows in (luma, luma.T):  # differences along x, then along y
        one, two = rows[:, 1:] - rows[:, :-1], rows[:, 2:] - rows[:, :-2]
        values.append(float(np.mean(one**2) / max(np.mean(two**2), 1e-20)))
    return values[0], values[1]


def sigma_error(estimated_sigma, true_sigma) -> float:
    """Mean |σ̂ − σ| expressed in 1/255 units (e.g. 2.0 means 2/255).

    estimated_sigma, true_sigma: noise standard deviations in [0, 1] scale, as scalars or
    maps (H×W, C×H×W, ...; tensor or numpy) that broadcast against each other, e.g. a scalar
    estimate against a per-pixel σ map.
    """
    a, b = _as_numpy(estimated_sigma), _as_numpy(true_sigma)
    try:
        diff = np.abs(a - b)
    except ValueError as err:
        raise ValueError(f"sigma shapes do not broadcast: {a.shape} vs {b.shape}") from err
    return float(np.mean(diff) * 255.0)


def _alexnet_checkpoint() -> Path | None:
    """Where torchvision caches the ImageNet AlexNet that LPIPS builds on (None: unknown)."""
    try:
        from torchvision.models import AlexNet_Weights
    except ImportError:
        return None
    filename = AlexNet_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


@functools.lru_cache(maxsize=1)
def _lpips_model():
    """The LPIPS (AlexNet, v0.1) module on CPU, or None when anything would need a download."""
    try:
        lpips = importlib.import_module("lpips")
    except ImportError:
        return None
    linear_weights = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    backbone = _alexnet_checkpoint()
    if not linear_weights.is_file() or backbone is None or not backbone.is_file():
        return None
    return lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()


def lpips_or_none(restored, target) -> float | None:
    """LPIPS (AlexNet, v0.1) on RGB, or None when it cannot be computed offline.

    restored, target: 3×H×W or B×3×H×W in [0, 1] (tensor or numpy); clipped to [0, 1]; a
    batch gives the mean. Returns None unless the ``lpips`` package is importable and both its
    linear-layer weights and torchvision's AlexNet checkpoint are already on disk: nothing is
    ever downloaded. Callers print "n/a (lpips weights not available)" for None.
    """
    model = _lpips_model()
    if model is None:
        return None
    a, b = _as_batch(restored, target)
    device = restored.device if torch.is_tensor(restored) else torch.device("cpu")
    model.to(device)
    ours, ref = (torch.from_numpy(np.clip(x, 0.0, 1.0)).float().to(device) for x in (a, b))
    with torch.no_grad():
        distances = model(ours, ref, normalize=True)
    return float(distances.mean())
