"""What KNet reads: the LR image as it is, or its contrast-normalised high frequencies.

The blur kernel changes only the highest frequencies of a bicubic-downsampled image, while
raw y is dominated by brightness and contrast. "highpass" removes both: y minus its 3×3 box
mean (reflect padding), divided by the root mean square of that residual over the image (all
channels). It has no parameters, so KNet's weights are the same whichever input it reads and
published weights run as published with "raw".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KNET_INPUTS = ("raw", "highpass")
BOX_SIZE = 3
RMS_FLOOR = 1e-4  # a flat image stays finite (its residual is ~0)


def highpass(y: torch.Tensor) -> torch.Tensor:
    """(y − box3(y)) / RMS over C×h×w, per image. y: B×C×h×w -> B×C×h×w (RMS 1)."""
    if y.dim() != 4:
        raise ValueError(f"y must be B×C×h×w, got shape {tuple(y.shape)}")
    r = BOX_SIZE // 2
    mean = F.avg_pool2d(F.pad(y, (r, r, r, r), mode="reflect"), BOX_SIZE, stride=1)
    residual = y - mean
    rms = residual.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return residual / rms.clamp_min(RMS_FLOOR)


def kernel_input(y: torch.Tensor, kind: str) -> torch.Tensor:
    """KNet's input for `kind` ("raw" or "highpass"). y: B×C×h×w -> B×C×h×w."""
    if kind == "raw":
        return y
    if kind == "highpass":
        return highpass(y)
    raise ValueError(f"unknown KNet input {kind!r}; expected one of {KNET_INPUTS}")
