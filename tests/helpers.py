"""Small, fast batches and networks shared by the tests (no photos needed), and a way to
kill a training process mid-run."""

import signal
import subprocess
import time
from pathlib import Path

import torch

from generative.config import ModelConfig
from generative.kernels import gaussian_kernel, sample_kernel_lambdas
from generative.operators import degrade
from generative.variance_prior import variance_prior_estimate
from guides.guide import GuideConfig

TINY_GUIDE = GuideConfig(
    snet_features=8, snet_depth=3, knet_features=8, knet_blocks=1, rnet_widths=(8, 16), rnet_blocks=1
)


def synthetic_batch(config: ModelConfig, batch: int = 2, size: int = 24, sigma: float = 0.05, seed: int = 0):
    """(y, x, xi, lambda_hat) for ``config`` from smooth random clean images of size×size."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, config.image_channels, size // 4, size // 4, generator=gen)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    lambda_hat, kernel = None, None
    if config.has_kernel:
        lambda_hat = sample_kernel_lambdas(batch, config.scale, generator=gen)
        kernel = gaussian_kernel(lambda_hat[:, :2], lambda_hat[:, 2], config.kernel_size)
    hx = degrade(x, kernel, config.scale, config.downsampler)
    y = hx + sigma * torch.randn(hx.shape, generator=gen)
    xi = variance_prior_estimate(y, hx, config.window, config.sigma_channels)
    return y, x, xi, lambda_hat


def sigkill_once_written(command: list[str], marker: Path, cwd: Path, env: dict, timeout: float = 120.0) -> None:
    """Run `command` and SIGKILL it as soon as the file `marker` exists (or after `timeout` s)."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while time.time() < deadline and not marker.exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
