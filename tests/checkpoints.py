"""Tiny random-init weight files for the API, CLI and benchmark tests (no trained weights)."""

from pathlib import Path

import torch

from generative.config import denoising_config, sr_config
from guides.guide import VIRNetGuide
from tests.helpers import TINY_GUIDE
from training.checkpoint import WEIGHTS_FORMAT, save_weights


def tiny_guide(task: str = "denoise", scale: int = 4, seed: int = 0) -> VIRNetGuide:
    """A randomly initialised tiny guide for `task` (scale used for "sr" only), in eval mode."""
    torch.manual_seed(seed)
    config = denoising_config() if task == "denoise" else sr_config(scale)
    return VIRNetGuide(config, TINY_GUIDE).eval()


def write_tiny_checkpoint(directory: Path, task: str = "denoise", scale: int = 4, name: str | None = None) -> Path:
    """Write `tiny_guide(task, scale)` as <name>.safetensors + <name>.json in `directory`
    (name defaults to "denoise" or "sr-x{scale}", as the embedded defaults); returns the
    .safetensors path."""
    guide = tiny_guide(task, scale)
    name = name or ("denoise" if task == "denoise" else f"sr-x{scale}")
    path = Path(directory) / f"{name}.safetensors"
    metadata = {
        "format": WEIGHTS_FORMAT,
        "model_config": guide.model_config.to_dict(),
        "guide_config": guide.guide_config.to_dict(),
        "training": {"steps": 0, "note": "random init, for tests"},
    }
    save_weights(path, guide.state_dict(), metadata)
    return path
