"""Scoring posterior laws against known truths: PIT, credible-interval coverage, widths, figures.

For a law with CDF F and the true value t, the probability integral transform u = F(t) is
uniform on [0, 1] when the law is calibrated (t is as likely anywhere in the law as its
probabilities say). The central c credible interval [F⁻¹((1 − c)/2), F⁻¹((1 + c)/2)] covers t
exactly when |u − ½| ≤ c/2, so the coverage at every level, the reliability diagram
(coverage against the nominal level) and the PIT histogram all follow from the PIT values.
A `Tally` keeps them as a histogram of BINS bins (exact at every level that is a multiple of
1/BINS), so millions of pixels and pooled settings cost no memory.

Laws are given by their parameters (read by the caller from the model's and the guide's
Pyro traces); the CDFs and quantiles are computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.special
import torch
from matplotlib.figure import Figure

LEVELS = (0.5, 0.9, 0.95)  # central credible intervals in the tables
WIDTH_LEVEL = 0.9  # the interval whose width is reported
BINS = 1000  # PIT resolution of a Tally
HISTOGRAM_BINS = 10  # bars of the PIT histograms
DIAGRAM_LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20)) + (0.99,)


@dataclass(frozen=True)
class InverseGammaLaw:
    """IG(shape, rate): density ∝ x^(−shape−1) exp(−rate/x); parameters broadcast together."""

    shape: torch.Tensor
    rate: torch.Tensor

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """P(X ≤ value) = Q(shape, rate/value), the regularized upper incomplete gamma."""
        return torch.special.gammaincc(_f64(self.shape), _f64(self.rate) / _f64(value))

    def quantile(self, q: float) -> torch.Tensor:
        shape = _f64(self.shape).cpu().numpy()
        return _f64(self.rate) / torch.from_numpy(np.asarray(scipy.special.gammainccinv(shape, q))).to(_device(self))


@dataclass(frozen=True)
class NormalLaw:
    """N(loc, scale²)."""

    loc: torch.Tensor
    scale: torch.Tensor

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        return torch.special.ndtr((_f64(value) - _f64(self.loc)) / _f64(self.scale))

    def quantile(self, q: float) -> torch.Tensor:
        return _f64(self.loc) + _f64(self.scale) * float(scipy.special.ndtri(q))


class EmpiricalLaw:
    """The law of a 1-D sample (e.g. of the training kernels): CDF and quantiles of its draws."""

    def __init__(self, draws: torch.Tensor):
        self.ordered = torch.sort(_f64(draws).flatten()).values

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        value = _f64(value)
        return torch.searchsorted(self.ordered, value.flatten()).view_as(value) / self.ordered.numel()

    def quantile(self, q: float) -> torch.Tensor:
        """The draw of rank ⌊q (N − 1)⌋."""
        return self.ordered[int(q * (self.ordered.numel() - 1))]


Law = InverseGammaLaw | NormalLaw | EmpiricalLaw


def interval_width(law: Law, level: float = WIDTH_LEVEL) -> torch.Tensor:
    """Width of the central `level` credible interval."""
    return law.quantile(0.5 + level / 2) - law.quantile(0.5 - level / 2)


@dataclass
class Tally:
    """PIT histogram and width sum of one (setting, target, method); add() more, merge with +."""

    counts: torch.Tensor = field(default_factory=lambda: torch.zeros(BINS, dtype=torch.float64))
    pit_sum: float = 0.0
    width_sum: float = 0.0

    def add(self, pit: torch.Tensor, width: torch.Tensor) -> None:
        """pit: PIT values in [0, 1]; width: one interval width per PIT value (or broadcastable)."""
        pit, width = torch.broadcast_tensors(pit.detach().double().cpu(), width.detach().double().cpu())
        pit = pit.flatten()
        index = (pit * BINS).long().clamp(0, BINS - 1)
        self.counts += torch.bincount(index, minlength=BINS).double()
        self.pit_sum += float(pit.sum())
        self.width_sum += float(width.sum())

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.counts + other.counts, self.pit_sum + other.pit_sum, self.width_sum + other.width_sum)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def coverage(self, level: float) -> float:
        """Fraction of PIT values in [½ − level/2, ½ + level/2): the central interval covers."""
        low, high = round((0.5 - level / 2) * BINS), round((0.5 + level / 2) * BINS)
        return float(self.counts[low:high].sum()) / max(self.n, 1)

    def histogram(self, bins: int = HISTOGRAM_BINS) -> torch.Tensor:
        """PIT density on `bins` equal bins (1 everywhere for a calibrated law)."""
        return self.counts.view(bins, -1).sum(dim=1) * bins / max(self.n, 1)

    def columns(self) -> dict:
        """n, cov50/cov90/cov95, below90/above90 (truth under/over the 90 % interval),
        pit_mean (0.5 for a calibrated law; above: the law sits too low) and width90."""
        tail = round((1 - WIDTH_LEVEL) / 2 * BINS)
        n = max(self.n, 1)
        values = {"n": self.n}
        values |= {f"cov{round(100 * level)}": self.coverage(level) for level in LEVELS}
        values["below90"] = float(self.counts[:tail].sum()) / n
        values["above90"] = float(self.counts[BINS - tail :].sum()) / n
        values["pit_mean"] = self.pit_sum / n
        values["width90"] = self.width_sum / n
        return values


def pit_and_width(law: Law, truth: torch.Tensor, relative: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(PIT of `truth` under `law`, width of its 90 % interval), the width divided by the
    truth if `relative` (for scale parameters such as σ² and λ²); for Tally.add."""
    truth = _f64(truth)
    width = interval_width(law)
    return law.cdf(truth), width / truth if relative else width


def reliability_diagram(panels: dict[str, dict[str, Tally]], path: Path) -> Path:
    """Coverage of the central interval against its nominal level, one panel per entry
    (title -> {method: tally}), the diagonal being perfect calibration."""
    figure, axes = _panel_grid(len(panels))
    for axis, (title, tallies) in zip(axes, panels.items()):
        axis.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--")
        for method, tally in tallies.items():
            axis.plot(DIAGRAM_LEVELS, [tally.coverage(level) for level in DIAGRAM_LEVELS], marker=".", label=method)
        axis.set(xlim=(0, 1), ylim=(0, 1), title=title, xlabel="nominal level", ylabel="coverage")
        axis.legend(fontsize=7)
    figure.savefig(path, dpi=110)
    return Path(path)


def pit_histograms(panels: dict[str, dict[str, Tally]], path: Path) -> Path:
    """PIT densities (HISTOGRAM_BINS bins), one panel per entry; 1 is perfect calibration."""
    figure, axes = _panel_grid(len(panels))
    edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    for axis, (title, tallies) in zip(axes, panels.items()):
        axis.axhline(1.0, color="black", lw=0.8, ls="--")
        for method, tally in tallies.items():
            density = tally.histogram().numpy()
            axis.stairs(density, edges, label=method, lw=1.5)
        axis.set(xlim=(0, 1), title=title, xlabel="PIT of the truth", ylabel="density")
        axis.legend(fontsize=7)
    figure.savefig(path, dpi=110)
    return Path(path)


def _panel_grid(count: int):
    columns = min(4, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(3.6 * columns, 3.2 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for axis in axes[count:]:
        axis.set_axis_off()
    return figure, axes[:count]


def _f64(value) -> torch.Tensor:
    return torch.as_tensor(value).double()


def _device(law: InverseGammaLaw) -> torch.device:
    return torch.as_tensor(law.rate).device
