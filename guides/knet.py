"""KNet: the kernel network behind q(Λ|y) (paper Sec. 4.3, Eq. 14).

Maps the low-resolution image y to the posterior parameters of the blur kernel
Λ = (λ1², λ2², ρ): η(y) = (η1, η2), the scales of q(λ²_l|y) = InvGamma(κ0 − 1, κ0 η_l),
and m(y), the mean of q(ρ|y) = N(m, r0²).

Layer for layer the public implementation's KNet, with its parameter names (so its weights
load by renaming the prefix only, `virnet.official`): ``head`` a 9×9 stride-4 convolution
without bias; ``body`` residual blocks, each conv3×3 → LeakyReLU(0.2) → conv3×3 → channel
attention (global average → 1×1 conv → LeakyReLU(0.2) → 1×1 conv → sigmoid), plus the
block's input; ``tail`` a 3×3 convolution to 3 channels and a global average pool.
"""

import math

import torch
from torch import nn

LOG_LAMBDA2_MIN = math.log(1e-4)
LOG_LAMBDA2_MAX = math.log(1e2)
LEAKY_SLOPE = 0.2
REDUCTION = 16  # channel-attention reduction ratio
# The final conv starts with small weights and bias (log 2, log 2, 0): the initial η is
# ≈ 2 HR pixels² (a kernel width l ≈ 1.4, mid-range for the training widths l ∈ (0, s])
# and ρ ≈ 0, instead of whatever a random conv gives.
INITIAL_LOG_LAMBDA2 = math.log(2.0)
TAIL_WEIGHT_SCALE = 1e-2


class _ChannelAttention(nn.Module):
    """x · sigmoid(conv(lrelu(conv(mean_hw(x))))), x: B×F×h×w → B×F×h×w."""

    def __init__(self, features: int, reduction: int):
        super().__init__()
        hidden = max(features // reduction, 1)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.body = nn.Sequential(
            nn.Conv2d(features, hidden, 1),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(hidden, features, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.body(self.avg(x))


class _AttentionBlock(nn.Module):
    """Residual channel-attention block: x + CA(conv(lrelu(conv(x)))), B×F×h×w."""

    def __init__(self, features: int, reduction: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(features, features, 3, padding=1),
            _ChannelAttention(features, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class KNet(nn.Module):
    """9×9 stride-4 conv (no bias) → `blocks` channel-attention residual blocks → 3×3 conv
    to 3 channels → global average pool → (λ1², λ2², ρ).

    Args:
        in_channels: channels C of y.
        features: width of the feature maps.
        blocks: number of residual blocks.
        reduction: channel-attention reduction ratio (hidden width features // reduction,
            at least 1).
    """

    def __init__(self, in_channels: int = 3, features: int = 64, blocks: int = 8, reduction: int = REDUCTION):
        super().__init__()
        self.head = nn.Conv2d(in_channels, features, 9, stride=4, padding=4, bias=False)
        self.body = nn.Sequential(*[_AttentionBlock(features, reduction) for _ in range(blocks)])
        self.tail = nn.Sequential(nn.Conv2d(features, 3, 3, padding=1), nn.AdaptiveAvgPool2d(1))
        last = self.tail[0]
        with torch.no_grad():
            last.weight.mul_(TAIL_WEIGHT_SCALE)
            last.bias.copy_(torch.tensor([INITIAL_LOG_LAMBDA2, INITIAL_LOG_LAMBDA2, 0.0]))

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y: B×C×h×w → (η = (λ1², λ2²): B×2 in [1e-4, 1e2], m = ρ: B in (−1, 1))."""
        out = self.tail(self.body(self.head(y))).flatten(1)
        lambda2 = out[:, :2].clamp(LOG_LAMBDA2_MIN, LOG_LAMBDA2_MAX).exp()
        rho = out[:, 2].tanh()
        return lambda2, rho
