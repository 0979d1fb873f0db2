"""SNet: the noise-variance network behind q(σ²|y) (paper Sec. 4.3, Eq. 13).

A plain CNN maps the corrupted image y to the map β(y), the scale parameter of
q(σ²_i|y) = InvGamma(α0 − 1, α0 β_i(y)); β is also that law's mode, i.e. the
estimated per-pixel noise variance.
"""

import math

import torch
from torch import nn

LOG_BETA_MIN = math.log(1e-10)
LOG_BETA_MAX = math.log(1e2)
# The last layer starts with bias log(1e-3) (σ ≈ 8/255, inside the training noise range
# [0, 75/255]) and weights scaled down by this factor, so the initial β is that small
# variance everywhere instead of exp(O(1)), which would start the ELBO far off.
INITIAL_LOG_BETA = math.log(1e-3)
LAST_LAYER_WEIGHT_SCALE = 1e-2
LEAKY_SLOPE = 0.25


class SNet(nn.Module):
    """Plain CNN: `depth` 3×3 convolutions with LeakyReLU(0.25) between them.

    Args:
        in_channels: channels C of the corrupted image y.
        out_channels: channels of β (1 when one variance serves all colour channels,
            C for real noise).
        features: width of the hidden layers.
        depth: number of convolutions (≥ 2).
        global_average: if True (SR, i.i.d. noise) the clamped log-variance map is
            averaged over h×w and broadcast back, so β is constant per image and
            channel (its value is the geometric mean of the per-pixel variances).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        features: int = 64,
        depth: int = 5,
        global_average: bool = False,
    ):
        super().__init__()
        if depth < 2:
            raise ValueError(f"SNet depth must be at least 2, got {depth}")
        widths = [in_channels] + [features] * (depth - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1))
            if i < depth - 1:
                layers.append(nn.LeakyReLU(LEAKY_SLOPE))
        self.body = nn.Sequential(*layers)
        self.global_average = global_average
        self._initialise()

    def _initialise(self) -> None:
        gain = nn.init.calculate_gain("leaky_relu", LEAKY_SLOPE)
        convs = [m for m in self.body if isinstance(m, nn.Conv2d)]
        for conv in convs:
            nn.init.orthogonal_(conv.weight, gain=gain)
            nn.init.zeros_(conv.bias)
        last = convs[-1]
        with torch.no_grad():
            last.weight.mul_(LAST_LAYER_WEIGHT_SCALE)
            last.bias.fill_(INITIAL_LOG_BETA)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: B×C×h×w → β: B×out_channels×h×w, in [1e-10, 1e2]."""
        log_beta = self.body(y).clamp(LOG_BETA_MIN, LOG_BETA_MAX)
        if self.global_average:
            log_beta = log_beta.mean(dim=(-2, -1), keepdim=True).expand_as(log_beta)
        return log_beta.exp()
