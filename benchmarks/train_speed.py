"""Seconds per SVI training step of each preset, in NCHW and in channels_last.

A step is what `training.loop.train` does per batch: the negative ELBO of the preset's model
and guide on one batch of its size (batch_size clean random patches of patch_size, degraded
by `training.degradations.synthesize` as the preset's model says), backward, per-network gradient
clipping and Adam (bfloat16 autocast with `amp`, as optim.amp). The data pipeline is left
out: the figure is the optimisation step alone, the mean over `steps` steps after WARM_UP.
channels_last puts the guide's weights and the batch's images in that memory format.
"""

from __future__ import annotations

import time

import pyro
import torch

from benchmarks.floor import synchronize
from training.config import TrainConfig, load_config
from training.degradations import DegradationSpec, synthesize
from training.loop import batch_arguments, build_objective, clip_per_network

WARM_UP = 2


def preset_batch(config: TrainConfig, device: torch.device, seed: int = 0) -> dict:
    """One synthetic batch of the preset's size and degradation, on `device`."""
    generator = torch.Generator().manual_seed(seed)
    patch = config.data.patch_size
    smooth = torch.rand(config.data.batch_size, config.model.image_channels, patch // 8, patch // 8, generator=generator)
    x = torch.nn.functional.interpolate(smooth, size=(patch, patch), mode="bicubic", align_corners=False).clamp(0, 1)
    spec = DegradationSpec.from_model_config(config.model, patch)
    return {k: v.to(device) for k, v in synthesize(x, spec, generator).items()}


def step_seconds(
    config: TrainConfig, device: torch.device, channels_last: bool, steps: int = 5, amp: bool = False
) -> tuple[float, list[float]]:
    """(mean seconds per step, the losses of the timed steps) for the preset `config`."""
    pyro.enable_validation(False)
    torch.manual_seed(config.run.seed)
    guide, loss_module = build_objective(config, device, distributed=False)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    guide.to(memory_format=layout)
    batch = preset_batch(config, device)
    for key in ("y", "x", "xi"):
        batch[key] = batch[key].contiguous(memory_format=layout)
    arguments = batch_arguments(batch, device)
    optimizer = torch.optim.Adam(guide.parameters(), lr=config.optim.lr)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    losses = []
    for step in range(WARM_UP + steps):
        if step == WARM_UP:
            synchronize(device)
            start = time.perf_counter()
        with autocast:
            loss = loss_module(*arguments)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_per_network(guide, config.optim.clip)
        optimizer.step()
        if step >= WARM_UP:
            losses.append(loss.item())
    synchronize(device)
    return (time.perf_counter() - start) / steps, losses


def preset_config(name: str) -> TrainConfig:
    return load_config(name, [])
