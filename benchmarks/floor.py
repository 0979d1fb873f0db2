"""This machine's convolution floor: how fast one 3×3 convolution runs here, and how long a
model's FLOPs take at that rate.

`conv_rate` times a 3×3 convolution of REFERENCE_FEATURES → REFERENCE_FEATURES channels in
channels_last (the layout inference uses), 2 FLOPs per multiply-accumulate as
torch.utils.flop_counter counts them; given a model's FLOPs, each timed call repeats the
convolution until it has done as many, so that both are timed over as long a stretch (on a
shared machine the best of short calls would catch quieter moments than a long restore can). `restore_flops` counts the FLOPs of `tiled_posterior`
for an image over all its tiles, on the meta device (nothing is computed). A model's floor
fraction is (FLOPs / rate) / measured seconds: 1.0 would be a restore as fast as the
reference convolution, so the fraction is what the model loses to smaller or odd-shaped
convolutions, element-wise layers, tiling and the model check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from guides.guide import VIRNetGuide
from virnet.tiled_posterior import tiled_posterior

REFERENCE_FEATURES = 64
# Input of the reference convolution (batch, side): a few GFLOP on a CPU, more on a GPU; a
# quarter of that for bf16 on a CPU, which may emulate it at a tenth of the speed.
REFERENCE_INPUT = {"cpu": (1, 256), "cuda": (16, 512)}


def best_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """The shortest of `repeats` timed calls of `fn` after one untimed warm-up call."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def conv_rate(
    device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 3, flops: int | None = None
) -> float:
    """GFLOP/s of the reference 3×3 convolution in `dtype`, channels_last, on `device`; each of
    the `repeats` timed calls does at least `flops` FLOPs (None: one convolution)."""
    batch, side = REFERENCE_INPUT["cuda" if device.type == "cuda" else "cpu"]
    if device.type == "cpu" and dtype == torch.bfloat16:
        side //= 2
    features = REFERENCE_FEATURES
    conv = torch.nn.Conv2d(features, features, 3, padding=1).to(device=device, dtype=dtype)
    conv = conv.requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.rand(batch, features, side, side, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    one = 2 * features * features * 9 * batch * side * side
    calls = max(1, math.ceil((flops or one) / one))

    def convolutions():
        for _ in range(calls):
            conv(x)

    with torch.inference_mode():
        seconds = best_seconds(convolutions, repeats, device)
    return calls * one / seconds / 1e9


def restore_flops(guide: VIRNetGuide, height: int, width: int, tile: int) -> int:
    """FLOPs of `tiled_posterior` on a 1×C×height×width input with tiles of side `tile`."""
    with torch.device("meta"):
        twin = VIRNetGuide(guide.model_config, guide.guide_config)
        y = torch.empty(1, guide.model_config.image_channels, height, width)
    counter = FlopCounterMode(display=False)
    with counter:
        tiled_posterior(twin, y, tile=tile, precision="fp32")
    return counter.get_total_flops()


def floor_fraction(flops: int, rate_gflops: float, seconds: float) -> float:
    """(time the FLOPs take at the reference rate) / (measured time)."""
    return flops / (rate_gflops * 1e9) / seconds


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
