"""RNet: the restoration network behind q(z|y, σ², Λ) (paper Sec. 4.3, Eq. 15).

A residual U-Net maps the (upsampled) corrupted image x plus conditioning maps (√β,
kernel information) to µ, the mean of q(z|y, σ², Λ) = N(µ, ε0²). The conditioning maps
enter by concatenation at the input ("input"), by a feature-wise multiplier and shift in
every down-path residual block ("down"), by both ("both"), or not at all ("none").
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

CONDITIONING_MODES = ("input", "down", "both", "none")
LEAKY_SLOPE = 0.2


class _CondModulation(nn.Module):
    """cond: B×K×h×w → (multiplier in (0, 1), shift), each B×F×h×w, by 1×1 convs."""

    def __init__(self, cond_channels: int, features: int):
        super().__init__()
        hidden = max(features // 4, 1)
        self.body = nn.Sequential(
            nn.Conv2d(cond_channels, hidden, 1),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(hidden, 2 * features, 1),
        )

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = self.body(cond).chunk(2, dim=1)
        return torch.sigmoid(scale), shift


class _ResBlock(nn.Module):
    """x + conv(lrelu(conv(x'))), x: B×F×h×w, where x' = x·mult + shift from the
    cond map (B×K×h×w) when `cond_channels` > 0 and x' = x otherwise."""

    def __init__(self, features: int, cond_channels: int = 0):
        super().__init__()
        self.modulation = _CondModulation(cond_channels, features) if cond_channels > 0 else None
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(features, features, 3, padding=1),
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        if self.modulation is not None:
            multiplier, shift = self.modulation(cond)
            h = x * multiplier + shift
        return x + self.body(h)


class _Stage(nn.Module):
    """`blocks` residual blocks at one scale, all fed the same cond map."""

    def __init__(self, features: int, blocks: int, cond_channels: int = 0):
        super().__init__()
        self.blocks = nn.ModuleList([_ResBlock(features, cond_channels) for _ in range(blocks)])

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, cond)
        return x


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad B×C×H×W on the bottom/right to H, W multiples of `multiple`: reflect, or
    replicate when the image is too small to reflect."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class RNet(nn.Module):
    """Residual U-Net with a global residual: µ = tail(U-Net(x, cond)) + x[:, :out].

    Args:
        in_channels: channels C of the image x.
        cond_channels: channels K of the conditioning map (ignored for "none").
        out_channels: channels of µ (≤ in_channels: the global residual adds the first
            out_channels channels of x).
        widths: feature width at each scale, finest first; len(widths) − 1 stride-2
            downsamplings, so inputs are padded to a multiple of 2^(len(widths) − 1).
        blocks: residual blocks per scale, on the down path, at the bottom and on the
            up path.
        conditioning: "input", "down", "both" or "none" (see the module docstring).
    """

    def __init__(
        self,
        in_channels: int = 3,
        cond_channels: int = 1,
        out_channels: int = 3,
        widths: Sequence[int] = (96, 192, 288),
        blocks: int = 3,
        conditioning: str = "input",
    ):
        super().__init__()
        if conditioning not in CONDITIONING_MODES:
            raise ValueError(f"conditioning must be one of {CONDITIONING_MODES}, got {conditioning!r}")
        if len(widths) < 1:
            raise ValueError("RNet needs at least one width")
        if out_channels > in_channels:
            raise ValueError(f"out_channels ({out_channels}) must not exceed in_channels ({in_channels})")
        if conditioning != "none" and cond_channels < 1:
            raise ValueError(f"conditioning {conditioning!r} needs cond_channels ≥ 1, got {cond_channels}")
        self.conditioning = conditioning
        self.cond_channels = cond_channels if conditioning != "none" else 0
        self.out_channels = out_channels
        self.multiple = 2 ** (len(widths) - 1)
        widths = list(widths)

        head_in = in_channels + (self.cond_channels if conditioning in ("input", "both") else 0)
        down_cond = self.cond_channels if conditioning in ("down", "both") else 0
        self.head = nn.Conv2d(head_in, widths[0], 3, padding=1)
        self.down_stages = nn.ModuleList([_Stage(w, blocks, down_cond) for w in widths[:-1]])
        self.downsamplers = nn.ModuleList(
            [nn.Conv2d(w, w_next, 3, stride=2, padding=1) for w, w_next in zip(widths[:-1], widths[1:])]
        )
        self.bottom = _Stage(widths[-1], blocks, down_cond)
        self.upsamplers = nn.ModuleList(
            [nn.ConvTranspose2d(w_next, w, 2, stride=2) for w, w_next in zip(widths[:-1], widths[1:])]
        )
        self.up_stages = nn.ModuleList([_Stage(w, blocks) for w in widths[:-1]])
        self.tail = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    def _check_cond(self, x: torch.Tensor, cond: torch.Tensor | None) -> None:
        if self.conditioning == "none":
            return
        if cond is None:
            raise ValueError(f"RNet with conditioning {self.conditioning!r} needs a cond map, got None")
        expected = (x.shape[0], self.cond_channels, *x.shape[-2:])
        if tuple(cond.shape) != expected:
            raise ValueError(f"cond must have shape {expected}, got {tuple(cond.shape)}")

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x: B×C×H×W, cond: B×K×H×W (None for "none") → µ: B×out_channels×H×W."""
        self._check_cond(x, cond)
        height, width = x.shape[-2:]
        h = _pad_to_multiple(x, self.multiple)
        cond_p = _pad_to_multiple(cond, self.multiple) if self.cond_channels else None
        if self.conditioning in ("input", "both"):
            h = torch.cat([h, cond_p], dim=1)
        h = self.head(h)

        down_cond = cond_p if self.conditioning in ("down", "both") else None
        skips = []
        for level, (stage, down) in enumerate(zip(self.down_stages, self.downsamplers)):
            h = stage(h, _cond_at_level(down_cond, level))
            skips.append(h)
            h = down(h)
        h = self.bottom(h, _cond_at_level(down_cond, len(self.down_stages)))

        for stage, up, skip in reversed(list(zip(self.up_stages, self.upsamplers, skips))):
            h = stage(up(h) + skip)

        out = self.tail(h)[..., :height, :width]
        return out + x[:, : self.out_channels]


def _cond_at_level(cond: torch.Tensor | None, level: int) -> torch.Tensor | None:
    """Average-pool the padded cond map B×K×H×W to scale 2^-level."""
    if cond is None or level == 0:
        return cond
    factor = 2**level
    return F.avg_pool2d(cond, factor)
