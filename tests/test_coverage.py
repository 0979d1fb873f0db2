"""PIT, coverage and interval widths: a calibrated law scores its nominal levels, a wrong one does not."""

import pytest
import scipy.stats
import torch

from benchmarks.coverage import (
    BINS,
    EmpiricalLaw,
    InverseGammaLaw,
    NormalLaw,
    Tally,
    interval_width,
    pit_and_width,
    pit_histograms,
    reliability_diagram,
)

N = 40_000  # standard error of a coverage ≤ 0.0025


def inverse_gamma_draws(shape, rate, n=N):
    """n draws of IG(shape, rate) as 1/Gamma(shape, rate) (the test seeds the global RNG)."""
    gamma = torch.distributions.Gamma(torch.tensor(shape, dtype=torch.float64), torch.tensor(rate, dtype=torch.float64))
    return 1 / gamma.sample((n,))


def tally_of(law, truth, relative=True):
    tally = Tally()
    tally.add(*pit_and_width(law, truth, relative))
    return tally


def test_a_calibrated_law_covers_its_nominal_levels_with_a_flat_pit():
    truth = inverse_gamma_draws(23.5, 24.5 * 0.01)
    columns = tally_of(InverseGammaLaw(torch.tensor(23.5), torch.tensor(24.5 * 0.01)), truth).columns()
    assert columns["n"] == N
    for level in (50, 90, 95):
        assert columns[f"cov{level}"] == pytest.approx(level / 100, abs=0.01)
    assert columns["below90"] == pytest.approx(0.05, abs=0.006) and columns["above90"] == pytest.approx(0.05, abs=0.006)
    assert columns["pit_mean"] == pytest.approx(0.5, abs=0.005)
    histogram = tally_of(InverseGammaLaw(torch.tensor(23.5), torch.tensor(0.245)), truth).histogram()
    assert torch.allclose(histogram, torch.ones(10, dtype=torch.float64), atol=0.06)


def test_too_narrow_and_shifted_laws_are_told_apart():
    truth = inverse_gamma_draws(23.5, 0.245)
    narrow = tally_of(InverseGammaLaw(torch.tensor(235.0), torch.tensor(2.36)), truth).columns()  # same mode, 10× shape
    assert narrow["cov90"] < 0.5 and narrow["width90"] < 0.5 * tally_of(
        InverseGammaLaw(torch.tensor(23.5), torch.tensor(0.245)), truth).columns()["width90"]
    low = tally_of(InverseGammaLaw(torch.tensor(23.5), torch.tensor(0.245 / 2)), truth).columns()  # sits too low
    assert low["pit_mean"] > 0.8 and low["above90"] > 0.5 and low["below90"] < 0.01


def test_interval_widths_are_the_distance_between_the_quantiles():
    law = InverseGammaLaw(torch.tensor([23.5, 60.0]), torch.tensor([0.1, 3.0]))
    expected = [scipy.stats.invgamma(a, scale=b).ppf(0.95) - scipy.stats.invgamma(a, scale=b).ppf(0.05)
                for a, b in ((23.5, 0.1), (60.0, 3.0))]
    assert torch.allclose(interval_width(law), torch.tensor(expected, dtype=torch.float64), rtol=1e-9)
    assert interval_width(NormalLaw(torch.tensor(0.3), torch.tensor(0.01))).item() == pytest.approx(2 * 1.6448536 * 0.01)
    truth = torch.tensor([0.2])
    pit, width = pit_and_width(NormalLaw(torch.tensor(0.0), torch.tensor(0.1)), truth, relative=False)
    assert pit.item() == pytest.approx(scipy.stats.norm.cdf(2.0)) and width.item() == pytest.approx(0.32897, rel=1e-4)


def test_coverage_is_exact_at_the_bin_edges_and_tallies_merge():
    left, right = Tally(), Tally()
    left.add(torch.tensor([0.049, 0.051]), torch.tensor(1.0))
    right.add(torch.tensor([0.5, 0.951]), torch.tensor([2.0, 3.0]))
    both = left + right
    assert both.n == 4 and both.counts.numel() == BINS
    assert both.coverage(0.9) == 0.5  # 0.051 and 0.5 lie in [0.05, 0.95)
    assert both.columns()["below90"] == 0.25 and both.columns()["above90"] == 0.25
    assert both.columns()["width90"] == pytest.approx(7 / 4)
    assert both.columns()["pit_mean"] == pytest.approx((0.049 + 0.051 + 0.5 + 0.951) / 4)


def test_empirical_law_of_a_sample_is_calibrated_for_new_draws_of_the_same_law():
    sample = torch.rand(N, generator=torch.Generator().manual_seed(1))
    truth = torch.rand(N, generator=torch.Generator().manual_seed(2))
    law = EmpiricalLaw(sample)
    assert tally_of(law, truth, relative=False).coverage(0.9) == pytest.approx(0.9, abs=0.01)
    assert law.quantile(0.95).item() == pytest.approx(0.95, abs=0.01)


def test_figures_are_written(tmp_path):
    truth = inverse_gamma_draws(23.5, 0.245, n=500)
    panels = {"σ²": {"calibrated": tally_of(InverseGammaLaw(torch.tensor(23.5), torch.tensor(0.245)), truth)}}
    for draw in (reliability_diagram, pit_histograms):
        path = draw(panels, tmp_path / f"{draw.__name__}.png")
        assert path.read_bytes().startswith(b"\x89PNG")
