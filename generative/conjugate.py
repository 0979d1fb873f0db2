"""The exact posterior of the noise variance σ² when the clean image is known.

The model's prior σ²_i ~ IG(a, b_i) (Eq. 4: a = α0 − 1, b = α0 ξ) is conjugate to its
likelihood y_ic ~ N((Hz)_ic, σ²_i) (Eq. 7). Given z = x (the clean image, ε0 → 0) the
residuals r = y − Hx update it in closed form:

    p(σ²_i | y, x) = IG(a + n_i/2, b_i + ½ Σ r²),

the sum running over the n_i observations that share σ²_i: the C colour channels of pixel i
when the model has one σ² map for all channels (``sigma_channels = 1``), the single channel
otherwise. This is the reference ("oracle") that `benchmarks/calibration.py` scores VIRNet's
q(σ²|y) against.
"""

from __future__ import annotations

import torch


def sigma2_posterior(
    concentration: torch.Tensor, rate: torch.Tensor, y: torch.Tensor, hx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(shape, rate) of p(σ² | y, x) for the prior IG(concentration, rate).

    concentration, rate: B×Cσ×h×w (or broadcastable to it) prior parameters, Cσ = 1 (one σ²
    shared by the C channels) or C; y, hx: B×C×h×w observation and degraded clean image Hx.
    Returns two B×Cσ×h×w tensors.
    """
    if y.shape != hx.shape or y.dim() != 4:
        raise ValueError(f"y and hx must be B×C×h×w of equal shape, got {tuple(y.shape)} and {tuple(hx.shape)}")
    groups = rate.shape[1]
    channels = y.shape[1]
    if groups not in (1, channels):
        raise ValueError(f"the prior has {groups} σ² channels, expected 1 or {channels}")
    squared = (y - hx) ** 2
    shared = channels // groups  # observations per σ²_i
    if groups == 1:
        squared = squared.sum(dim=1, keepdim=True)
    return concentration + shared / 2, rate + squared / 2
