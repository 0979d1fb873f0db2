"""SNet: the noise-variance network behind q(σ²|y) (paper Sec. 4.3, Eq. 13).

A plain CNN maps the corrupted image y to the map β(y), the scale parameter of
q(σ²_i|y) = InvGamma(α0 − 1, α0 β_i(y)); β is also that law's mode, i.e. the
estimated per-pixel noise variance.

Layer for layer the public implementation's SNet (its "DnCNN"): ``conv1`` → LeakyReLU(0.25)
→ ``mid_layer`` (depth − 2 × conv + LeakyReLU(0.25)) → ``conv_last``, all 3×3 convolutions,
giving log β; for i.i.d. noise (SR) the log-variance map is averaged over the image before
it is clamped to [log 1e-10, log 1e2] and exponentiated. The parameter names are the public
ones, so its weights load by renaming the prefix only (`virnet.official`).
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


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class SNet(nn.Module):
    """Plain CNN: `depth` 3×3 convolutions, each but the last followed by LeakyReLU(0.25).

    Args:
        in_channels: channels C of the corrupted image y.
        out_channels: channels of β (1 when one variance serves all colour channels,
            C for real noise).
        features: width of the hidden layers.
        depth: number of convolutions (≥ 2).
        global_average: if True (SR, i.i.d. noise) the log-variance map is averaged over
            h×w before the clamp and broadcast back, so β is constant per image and
            channel (the geometric mean of the per-pixel variances when none is clamped).
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
        self.conv1 = _conv3x3(in_channels, features)
        self.relu = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
        middle: list[nn.Module] = []
        for _ in range(depth - 2):
            middle += [_conv3x3(features, features), nn.LeakyReLU(LEAKY_SLOPE, inplace=True)]
        self.mid_layer = nn.Sequential(*middle)
        self.conv_last = _conv3x3(features, out_channels)
        self.global_average = global_average
        self._initialise()

    def _initialise(self) -> None:
        gain = nn.init.calculate_gain("leaky_relu", LEAKY_SLOPE)
        for conv in self.convolutions():
            nn.init.orthogonal_(conv.weight, gain=gain)
            nn.init.zeros_(conv.bias)
        with torch.no_grad():
            self.conv_last.weight.mul_(LAST_LAYER_WEIGHT_SCALE)
            self.conv_last.bias.fill_(INITIAL_LOG_BETA)

    def convolutions(self) -> list[nn.Conv2d]:
        """The `depth` convolutions, first to last."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: B×C×h×w → β: B×out_channels×h×w, in [1e-10, 1e2]."""
        log_beta = self.conv_last(self.mid_layer(self.relu(self.conv1(y))))
        if self.global_average:
            log_beta = log_beta.mean(dim=(-2, -1), keepdim=True).expand_as(log_beta)
        return log_beta.clamp(LOG_BETA_MIN, LOG_BETA_MAX).exp()
