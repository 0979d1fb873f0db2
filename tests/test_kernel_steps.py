"""Extra KNet steps touch KNet only and lower the kernel term of the ELBO."""

from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import torch

from generative.config import sr_config
from guides.guide import VIRNetGuide
from tests.helpers import TINY_GUIDE
from training.closed_forms import kl_kernel
from training.data import SyntheticDegradation
from training.degradations import DegradationSpec
from training.kernel_steps import KernelSteps


def _dataset(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        iio.imwrite(tmp_path / f"t{i}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    spec = DegradationSpec(task="sr", scale=2, patch_size=32, kernel_patch_size=64)
    return SyntheticDegradation(tmp_path, spec, length=8, seed=0, deterministic=True)  # the same 8 examples each epoch


def test_extra_steps_move_knet_alone_and_fit_the_kernel_term(tmp_path):
    """50 steps on one repeated batch of 8: only KNet's weights move and its KL falls."""
    torch.manual_seed(0)
    guide = VIRNetGuide(sr_config(2), replace(TINY_GUIDE, knet_input="highpass"))
    dataset = _dataset(tmp_path)
    held = [dataset[i] for i in range(8)]
    y_kernel = torch.stack([e["y_kernel"] for e in held])
    kernel_params_hat = torch.stack([e["kernel_params_hat"] for e in held])

    def kernel_term():
        with torch.no_grad():
            eta, m = guide.kernel_posterior(y_kernel)
            return kl_kernel(m, eta, kernel_params_hat, guide.model_config.kappa0, guide.model_config.r0_sq).mean().item()

    before = {n: p.detach().clone() for n, p in guide.named_parameters()}
    start = kernel_term()
    optimizer = torch.optim.Adam(guide.parameters(), lr=3e-3)
    steps = KernelSteps(guide, optimizer, dataset, 8, 0, 0, steps=50, max_norm=float("inf"), device=torch.device("cpu"))
    steps()
    changed = {n.split(".")[0] for n, p in guide.named_parameters() if not torch.equal(before[n], p)}
    assert changed == {"knet"}
    assert torch.isfinite(steps.loss)
    assert kernel_term() < 0.1 * start
