"""Small, fast batches and networks shared by the tests (no photos needed), and a way to
kill a training process mid-run."""

import shutil
import signal
import subprocess
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from generative.config import ModelConfig
from generative.kernels import gaussian_kernel
from generative.operators import degrade
from generative.variance_prior import variance_prior_estimate
from guides.guide import GuideConfig
from training.degradations import sample_kernel_lambdas

TRACKING_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera", "coins", "moon", "grass")
TRACKING_MAX_SIGMA = 0.008
TRACKING_HOLDOUT = 0.33
TINY_GUIDE = GuideConfig(
    snet_features=8, snet_depth=3, knet_features=8, knet_blocks=1, rnet_widths=(8, 16), rnet_blocks=1
)


def write_random_photos(folder: Path, count: int, side: int) -> Path:
    """`count` uniform-noise RGB PNGs, side×side, named p00.png, p01.png, ... (seed 0)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        iio.imwrite(folder / f"p{i:02d}.png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    return folder


def synthetic_batch(config: ModelConfig, batch: int = 2, size: int = 24, sigma: float = 0.05, seed: int = 0):
    """(y, x, xi, kernel_params_hat) for ``config`` from smooth random clean images of size×size."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, config.image_channels, size // 4, size // 4, generator=gen)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    kernel_params_hat, kernel = None, None
    if config.has_kernel:
        kernel_params_hat = sample_kernel_lambdas(batch, config.scale, generator=gen)
        kernel = gaussian_kernel(kernel_params_hat[:, :2], kernel_params_hat[:, 2], config.kernel_size)
    hx = degrade(x, kernel, config.scale, config.downsampler)
    y = hx + sigma * torch.randn(hx.shape, generator=gen)
    xi = variance_prior_estimate(y, hx, config.window, config.sigma_channels)
    return y, x, xi, kernel_params_hat


def sigkill_once_written(command: list[str], marker: Path, cwd: Path, env: dict, timeout: float = 120.0) -> None:
    """Run `command` and SIGKILL it as soon as the file `marker` exists (or after `timeout` s)."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while time.time() < deadline and not marker.exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
def train_tracking_guide(root: Path) -> Path:
    """Train a tiny ×4 guide whose KNet learns the kernel: KNet reads the contrast-normalised
    high frequencies of a larger patch and takes two extra steps per SVI step; 200 SVI steps
    on skimage's bundled photos at low noise (σ ≤ 2/255), a third of them held out.
    Returns the run folder (metrics.csv, model.safetensors; photos/ and heldout/ beside it)."""
    import skimage.data

    from training.config import load_config
    from training.images import find_images, holdout_split
    from training.loop import train

    photos, heldout = root / "photos", root / "heldout"
    photos.mkdir()
    heldout.mkdir()
    for name in TRACKING_PHOTOS:
        iio.imwrite(photos / f"{name}.png", getattr(skimage.data, name)())
    overrides = [
        "guide.snet_features=8", "guide.snet_depth=3", "guide.knet_features=16", "guide.knet_blocks=1",
        "guide.rnet_widths=[8, 16]", "guide.rnet_blocks=1", "guide.knet_input='highpass'",
        "data.patch_size=48", "data.kernel_patch_size=128", "data.batch_size=4", "data.workers=0",
        f"data.max_sigma={TRACKING_MAX_SIGMA}", "data.val_images=1", f"data.holdout={TRACKING_HOLDOUT}",
        "optim.steps=200", "optim.knet_steps=2", "optim.warmup_steps=20", "optim.lr=2e-3",
        "run.log_every=50", "run.val_every=100", "run.checkpoint_every=100000",
    ]
    run = root / "run"
    train(load_config("sr-x4-cpu", overrides), photos, run, progress=False)
    for path in holdout_split(find_images(photos), TRACKING_HOLDOUT, seed=0)[1]:
        shutil.copy(path, heldout / path.name)
    return run


def rows_by_key(result: dict) -> dict:
    """A benchmark's result.json rows by their key."""
    return {row["key"]: row for row in result["rows"]}
