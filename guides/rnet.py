"""RNet: the restoration network behind q(z|y, σ², Λ) (paper Sec. 4.3, Eq. 15).

A residual U-Net maps the (upsampled) corrupted image x plus conditioning maps (√β,
kernel information) to µ, the mean of q(z|y, σ², Λ) = N(µ, ε0²). The conditioning maps
enter by concatenation at the input ("input"), by two feature-wise multiplier/shift layers
in every down-path residual block ("down"), by both ("both"), or not at all ("none").

Layer for layer the public implementation's RNet ("AttResUNet"), with its parameter names
(so its weights load by renaming the prefix only, `virnet.official`):

- ``head``: 3×3 conv of [x, cond] ("input"/"both") or x;
- ``down_path[i]``: ``body`` = `blocks` residual blocks at width widths[i], then
  ``downsampler`` = 3×3 stride-2 conv to widths[i + 1] (none at the coarsest scale); in
  "down"/"both" each block reads the cond map resized by nearest neighbour to its scale;
- ``up_path[j]`` (coarse to fine): ``upsampler`` = 2×2 stride-2 transposed conv, the skip
  added to it, then ``body`` = `blocks` residual blocks without conditioning;
- ``tail``: 3×3 conv, plus the global residual x.

A residual block is pre-activation: h = conv1(lrelu(x·m1 + a1)), out = x + conv2(lrelu(h·m2
+ a2)), with (m_k, a_k) = ``sft{k}``(cond) from 1×1 convs (m_k = 1, a_k = 0 without
conditioning). Inputs are reflect-padded at the bottom/right to a multiple of
2^(len(widths) − 1) and the output cropped back.

A cond map that is constant over the image (SR: one kernel, i.i.d. noise) may be passed as
B×K×1×1: the modulations are then computed once per image and broadcast, which gives the
same µ as the full map without running the 1×1 convs at every pixel.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

CONDITIONING_MODES = ("input", "down", "both", "none")
LEAKY_SLOPE = 0.2


class _Modulation(nn.Module):
    """cond: B×K×h×w → (multiplier in (0, 1), shift), each B×F×h×w: two 1×1 convs with
    LeakyReLU(0.2) to F/4 hidden features, then a sigmoid 1×1 conv and a plain 1×1 conv."""

    def __init__(self, cond_channels: int, features: int):
        super().__init__()
        hidden1, hidden2 = max(features // 8, 1), max(features // 4, 1)
        self.conv1 = nn.Conv2d(cond_channels, hidden1, 1)
        self.conv2 = nn.Conv2d(hidden1, hidden2, 1)
        self.mul_conv = nn.Conv2d(hidden2, features, 1)
        self.add_conv = nn.Conv2d(hidden2, features, 1)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(cond), LEAKY_SLOPE)), LEAKY_SLOPE)
        return torch.sigmoid(self.mul_conv(hidden)), self.add_conv(hidden)


class _ResBlock(nn.Module):
    """Pre-activation residual block with two modulations from the cond map when
    `cond_channels` > 0 (see the module docstring); x: B×F×h×w, cond: B×K×h×w."""

    def __init__(self, features: int, cond_channels: int = 0):
        super().__init__()
        self.conditioned = cond_channels > 0
        if self.conditioned:
            self.sft1 = _Modulation(cond_channels, features)
            self.sft2 = _Modulation(cond_channels, features)
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        if self.conditioned:
            multiplier, shift = self.sft1(cond)
            h = torch.addcmul(shift, h, multiplier)
        h = self.conv1(F.leaky_relu(h, LEAKY_SLOPE))
        if self.conditioned:
            multiplier, shift = self.sft2(cond)
            h = torch.addcmul(shift, h, multiplier)
        # h is a fresh tensor here, so the activation and the residual sum can reuse its memory.
        return self.conv2(F.leaky_relu(h, LEAKY_SLOPE, inplace=True)).add_(x)


class _DownStage(nn.Module):
    """`blocks` residual blocks at one scale (all fed the same cond map), then the
    stride-2 downsampler to the next width (None at the coarsest scale)."""

    def __init__(self, features: int, next_features: int | None, blocks: int, cond_channels: int):
        super().__init__()
        self.body = nn.ModuleList([_ResBlock(features, cond_channels) for _ in range(blocks)])
        self.downsampler = (
            nn.Conv2d(features, next_features, 3, stride=2, padding=1) if next_features is not None else None
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (downsampled features, features before downsampling, for the skip)."""
        for block in self.body:
            x = block(x, cond)
        return (self.downsampler(x) if self.downsampler is not None else x), x


class _UpStage(nn.Module):
    """2×2 transposed conv to the finer width, + skip, then `blocks` residual blocks."""

    def __init__(self, features: int, finer_features: int, blocks: int):
        super().__init__()
        self.upsampler = nn.ConvTranspose2d(features, finer_features, 2, stride=2)
        self.body = nn.ModuleList([_ResBlock(finer_features) for _ in range(blocks)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.upsampler(x) + skip
        for block in self.body:
            x = block(x)
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
        blocks: residual blocks per scale, on the down path (the coarsest scale included)
            and on the up path.
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

        self.cond_at_input = conditioning in ("input", "both")
        self.cond_in_blocks = conditioning in ("down", "both")
        head_in = in_channels + (self.cond_channels if self.cond_at_input else 0)
        block_cond = self.cond_channels if self.cond_in_blocks else 0
        self.head = nn.Conv2d(head_in, widths[0], 3, padding=1)
        self.down_path = nn.ModuleList(
            [_DownStage(w, w_next, blocks, block_cond) for w, w_next in zip(widths, [*widths[1:], None])]
        )
        self.up_path = nn.ModuleList(
            [_UpStage(widths[i + 1], widths[i], blocks) for i in reversed(range(len(widths) - 1))]
        )
        self.tail = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    def _check_cond(self, x: torch.Tensor, cond: torch.Tensor | None) -> None:
        if self.conditioning == "none":
            return
        if cond is None:
            raise ValueError(f"RNet with conditioning {self.conditioning!r} needs a cond map, got None")
        expected = [(x.shape[0], self.cond_channels, *size) for size in (x.shape[-2:], (1, 1))]
        if tuple(cond.shape) not in expected:
            raise ValueError(f"cond must have shape {expected[0]} or {expected[1]}, got {tuple(cond.shape)}")

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x: B×C×H×W, cond: B×K×H×W or, constant over the image, B×K×1×1 (None for "none")
        → µ: B×out_channels×H×W."""
        self._check_cond(x, cond)
        height, width = x.shape[-2:]
        constant = cond is not None and cond.shape[-2:] == (1, 1)
        h = _pad_to_multiple(x, self.multiple)
        cond_p = None
        if self.cond_channels:
            cond_p = cond if constant else _pad_to_multiple(cond, self.multiple)
        if self.cond_at_input:
            h = torch.cat([h, cond_p.expand(-1, -1, *h.shape[-2:])], dim=1)
        h = self.head(h)

        skips = []
        for stage in self.down_path:
            level_cond = None
            if self.cond_in_blocks:
                level_cond = cond_p if constant else F.interpolate(cond_p, size=h.shape[-2:], mode="nearest")
            h, before_down = stage(h, level_cond)
            skips.append(before_down)
        for stage, skip in zip(self.up_path, reversed(skips[:-1])):
            h = stage(h, skip)

        out = self.tail(h)[..., :height, :width]
        return out + x[:, : self.out_channels]
