"""Restoration backbones for the Table 14 ablation, drop-in replacements of guides.rnet.RNet.

Each maps (x: B×C×H×W, cond: B×K×H×W or None) to µ: B×C×H×W with a global residual
µ = x + f([x, cond]) (the conditioning maps are concatenated at the input), and has the
`multiple` attribute (input sides are padded internally to a multiple of it) that tiling reads.
- DnCNN: a plain conv stack, conv-BN-ReLU in the middle (Zhang et al. 2017);
- UNet: a U-Net whose stages are two plain conv + LeakyReLU layers (no residual blocks);
- ResUNet: our RNet itself (residual blocks), left in place by `replace_rnet`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from guides.guide import VIRNetGuide

BACKBONES = ("dncnn", "unet", "resunet")
DNCNN_DEPTH = 17
LEAKY_SLOPE = 0.2


class DnCNN(nn.Module):
    """conv+ReLU, (depth − 2) × conv+BN+ReLU, conv; µ = x + that (residual learning)."""

    def __init__(self, channels: int = 3, cond_channels: int = 0, features: int = 64, depth: int = DNCNN_DEPTH):
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN needs depth ≥ 2, got {depth}")
        self.cond_channels = cond_channels
        self.multiple = 1
        layers = [nn.Conv2d(channels + cond_channels, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features), nn.ReLU()]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x: B×C×H×W, cond: B×K×H×W (None when K = 0) -> µ: B×C×H×W."""
        return x + self.body(_with_cond(x, cond, self.cond_channels))


def _stage(features_in: int, features_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(features_in, features_out, 3, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Conv2d(features_out, features_out, 3, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


class UNet(nn.Module):
    """Plain U-Net: two convs per scale, stride-2 conv down, 2×2 transposed conv up,
    concatenated skips, a 3×3 tail conv; µ = x + that."""

    def __init__(self, channels: int = 3, cond_channels: int = 0, widths: Sequence[int] = (64, 128, 256)):
        super().__init__()
        widths = list(widths)
        if not widths:
            raise ValueError("UNet needs at least one width")
        self.cond_channels = cond_channels
        self.multiple = 2 ** (len(widths) - 1)
        self.head = _stage(channels + cond_channels, widths[0])
        self.down = nn.ModuleList(nn.Conv2d(w, w_next, 3, stride=2, padding=1) for w, w_next in zip(widths, widths[1:]))
        self.down_stages = nn.ModuleList(_stage(w, w) for w in widths[1:])
        self.up = nn.ModuleList(nn.ConvTranspose2d(w_next, w, 2, stride=2) for w, w_next in zip(widths, widths[1:]))
        self.up_stages = nn.ModuleList(_stage(2 * w, w) for w in widths[:-1])
        self.tail = nn.Conv2d(widths[0], channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x: B×C×H×W, cond: B×K×H×W (None when K = 0) -> µ: B×C×H×W."""
        height, width = x.shape[-2:]
        pad = (0, -width % self.multiple, 0, -height % self.multiple)
        h = self.head(F.pad(_with_cond(x, cond, self.cond_channels), pad, mode="replicate"))
        skips = []
        for down, stage in zip(self.down, self.down_stages):
            skips.append(h)
            h = stage(down(h))
        for up, stage, skip in reversed(list(zip(self.up, self.up_stages, skips))):
            h = stage(torch.cat([up(h), skip], dim=1))
        return x + self.tail(h)[..., :height, :width]


def _with_cond(x: torch.Tensor, cond: torch.Tensor | None, cond_channels: int) -> torch.Tensor:
    if cond_channels == 0:
        return x
    if cond is None or cond.shape[1] != cond_channels:
        found = None if cond is None else tuple(cond.shape)
        raise ValueError(f"expected a cond map with {cond_channels} channels, got {found}")
    return torch.cat([x, cond], dim=1)


def replace_rnet(guide: VIRNetGuide, backbone: str, dncnn_depth: int = DNCNN_DEPTH) -> VIRNetGuide:
    """Put `backbone` in place of guide.rnet (in place; returns the guide). The new network
    reads the same conditioning maps; DnCNN takes the first RNet width as its width and UNet
    all of RNet's widths. "resunet" keeps RNet."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
    if backbone == "resunet":
        return guide
    channels = guide.model_config.image_channels
    widths = guide.guide_config.rnet_widths
    cond = guide.rnet.cond_channels
    device = next(guide.rnet.parameters()).device
    if backbone == "dncnn":
        guide.rnet = DnCNN(channels, cond, widths[0], dncnn_depth).to(device)
    else:
        guide.rnet = UNet(channels, cond, widths).to(device)
    return guide
