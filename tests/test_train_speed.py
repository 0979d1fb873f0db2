"""benchmarks/train_speed.py: one SVI step per preset, in NCHW and in channels_last."""

import pytest
import torch

from benchmarks import train_speed
from training.config import load_config

TINY = ["data.batch_size=2", "data.patch_size=32", "guide.snet_features=8", "guide.rnet_widths=[8, 16]",
        "guide.rnet_blocks=1", "guide.knet_features=8", "guide.knet_blocks=1"]


@pytest.mark.parametrize("preset", ["denoise-niid-cpu", "sr-x2-cpu"])
def test_both_layouts_train_the_same_numbers(preset):
    config = load_config(preset, TINY)
    nchw, nchw_losses = train_speed.step_seconds(config, torch.device("cpu"), channels_last=False, steps=2)
    fast, fast_losses = train_speed.step_seconds(config, torch.device("cpu"), channels_last=True, steps=2)
    assert nchw > 0 and fast > 0
    assert fast_losses == pytest.approx(nchw_losses, rel=1e-3)


def test_the_batch_has_the_presets_size():
    batch = train_speed.preset_batch(load_config("sr-x4-cpu"), torch.device("cpu"))
    config = load_config("sr-x4-cpu")
    assert batch["x"].shape == (config.data.batch_size, 3, config.data.patch_size, config.data.patch_size)
    assert batch["y"].shape[-1] == config.data.patch_size // 4 and batch["kernel_params_hat"].shape == (config.data.batch_size, 3)
