"""What the Python API accepts: the model for a task, and an image as the networks read it.

`load_for_task` resolves `model` (a guide, a path, a name, or the embedded default for the
task) and checks it can do the task and scale; `network_input` turns a C×H×W or B×C×H×W
image (or an `ImageData`) into the network's y, refusing what it cannot read.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generative.config import SR_SCALES, TASKS, ModelConfig
from guides.guide import VIRNetGuide
from virnet.devices import resolve_device
from virnet.errors import VirnetError
from virnet.image_io import ImageData
from virnet.models import default_model_name, load_model

# Input values the networks accept: the [0, 1] scale with room for strong noise on either
# side (σ = 75/255 noise stays within it); a 0-255 image is far outside.
PIXEL_RANGE = (-2.0, 3.0)
Image = torch.Tensor | ImageData


def load_for_task(
    model: VIRNetGuide | str | Path | None,
    task: str | None = None,
    scale: int | None = None,
    device: str | torch.device | None = None,
    like: Image | None = None,
) -> VIRNetGuide:
    """The guide to use for `task`/`scale`: `model` itself, loaded from a path or name, or
    the embedded default. Checks the task and scale (VirnetError on a mismatch). A loaded
    guide stays where it is (`device`, if given, must name its device); otherwise the model is
    loaded onto `device`, or the device of the tensor `like`, or the CPU.
    """
    _check_task(task, scale)
    if device is not None:
        device = resolve_device(device)
    if isinstance(model, VIRNetGuide):
        own = next(model.parameters()).device
        if device is not None and not _same_device(own, device):
            raise VirnetError(f"the model is on {own} but device {device} was asked for; move it with model.to(...)")
        guide, source = model, "the given model"
    else:
        if device is None:
            device = like.device if isinstance(like, torch.Tensor) else torch.device("cpu")
        if model is None:
            name = default_model_name(_default_task(task, scale), scale)
            source = f"default model {name!r}"
        else:
            name, source = model, f"model {model}"
        guide = load_model(name, device)
    _check_model_task(guide.model_config, task, scale, source)
    return guide


def network_input(image: Image, guide: VIRNetGuide) -> tuple[torch.Tensor, int]:
    """(y: B×C×h×w on the guide's device and dtype, the input's channel count).

    A 1-channel image is replicated to the network's 3 channels. Raises VirnetError for a
    tensor of the wrong rank or type, an empty image, NaN/inf values, values outside
    PIXEL_RANGE (e.g. a 0-255 image) or a channel count the network cannot read.
    """
    pixels = image.pixels if isinstance(image, ImageData) else image
    if not isinstance(pixels, torch.Tensor):
        raise VirnetError(f"expected an image tensor or ImageData, got {type(image).__name__}")
    if pixels.ndim not in (3, 4):
        raise VirnetError(f"expected a C×H×W or B×C×H×W image, got shape {tuple(pixels.shape)}")
    if not pixels.is_floating_point():
        raise VirnetError(f"expected a floating-point image in [0, 1], got dtype {pixels.dtype}")
    y = pixels[None] if pixels.ndim == 3 else pixels
    if y.numel() == 0:
        raise VirnetError(f"the image is empty (shape {tuple(y.shape)})")
    if not torch.isfinite(y).all():
        raise VirnetError("the image contains NaN or infinite values")
    low, high = y.min().item(), y.max().item()
    if low < PIXEL_RANGE[0] or high > PIXEL_RANGE[1]:
        raise VirnetError(
            f"the pixel values span [{low:.4g}, {high:.4g}], far outside the [0, 1] scale the model reads: "
            "divide 8-bit values by 255 (16-bit ones by 65535)"
        )
    channels, wanted = y.shape[1], guide.model_config.image_channels
    if channels == 1 and wanted == 3:
        y = y.expand(-1, 3, -1, -1)
    elif channels != wanted:
        raise VirnetError(f"the model reads {wanted}-channel images, got {channels} channels")
    parameter = next(guide.parameters())
    return y.to(device=parameter.device, dtype=parameter.dtype).contiguous(), channels


def _default_task(task: str | None, scale: int | None) -> str:
    if task is not None:
        return task
    return "sr" if scale not in (None, 1) else "denoise"


def _check_task(task: str | None, scale: int | None) -> None:
    if task is not None and task not in TASKS:
        raise VirnetError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if scale is None:
        return
    if _default_task(task, scale) == "denoise" and scale != 1:
        raise VirnetError(f"denoising has no scale (got {scale}); use the sr task for super-resolution")
    if _default_task(task, scale) == "sr" and scale not in SR_SCALES:
        raise VirnetError(f"unsupported scale {scale!r}; super-resolution scales are {', '.join(map(str, SR_SCALES))}")


def _check_model_task(cfg: ModelConfig, task: str | None, scale: int | None, source: str) -> None:
    kind = "denoising" if cfg.task == "denoise" else f"×{cfg.scale} super-resolution"
    if task is not None and task != cfg.task:
        raise VirnetError(f"{source} is a {kind} model, it cannot do task {task!r}")
    if scale is not None and scale != cfg.scale:
        raise VirnetError(f"{source} is a {kind} model, it cannot do scale {scale}")


def _same_device(actual: torch.device, asked: torch.device) -> bool:
    return actual.type == asked.type and (asked.index is None or asked.index == actual.index)
