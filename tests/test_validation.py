"""Validation metrics: Pearson's r can tell a KNet that tracks the kernel from a constant one."""

import csv
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from generative.config import sr_config
from guides.guide import VIRNetGuide
from tests.helpers import TINY_GUIDE
from training.degradations import MIN_TRAINING_WIDTH, DegradationSpec
from training.validation import kernel_correlations, kernel_tracking, kernel_validation_set, pearson, restoration_scores


def test_pearson_is_one_for_a_linear_relation_and_zero_for_a_constant():
    truth = torch.linspace(0, 1, 50)
    assert pearson(3 * truth + 2, truth) == pytest.approx(1.0)
    assert pearson(-truth, truth) == pytest.approx(-1.0)
    assert pearson(torch.full((50,), 0.7), truth) == 0.0
    noise = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    assert abs(pearson(noise, torch.randn(2000, generator=torch.Generator().manual_seed(1)))) < 0.1


def test_kernel_correlations_are_per_parameter():
    truth = torch.rand(40, 3, generator=torch.Generator().manual_seed(0))
    estimate = truth.clone()
    estimate[:, 1] = 1.0  # λ2² constant
    estimate[:, 2] = -truth[:, 2]
    r = kernel_correlations(estimate, truth)
    assert r == {"r_lambda1": pytest.approx(1.0), "r_lambda2": 0.0, "r_rho": pytest.approx(-1.0)}


def _photos(folder, count=3, size=(100, 132)):
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        paths.append(folder / f"p{i}.png")
        iio.imwrite(paths[-1], rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return paths


def test_kernel_validation_cases_are_whole_images_with_their_own_training_kernel(tmp_path):
    paths = _photos(tmp_path / "val") + [tmp_path / "small.png"]
    iio.imwrite(paths[-1], np.zeros((40, 40, 3), dtype=np.uint8))  # LR 10×10: left out
    spec = DegradationSpec(task="sr", scale=4, patch_size=64)
    cases = kernel_validation_set(paths, spec, count=12, seed=3)
    assert len(cases) == 12
    assert all(c.y.shape == (1, 3, 25, 33) for c in cases), "whole images, cropped to a multiple of s"
    lambdas = torch.stack([c.kernel_params_hat for c in cases])
    assert len({tuple(lam.tolist()) for lam in lambdas}) == 12, "one kernel per case"
    assert (lambdas[:, :2] >= MIN_TRAINING_WIDTH**2 - 1e-6).all() and (lambdas[:, :2] <= 16 + 1e-4).all()
    assert all(spec.min_sigma <= c.sigma <= spec.max_sigma for c in cases)
    again = kernel_validation_set(paths, spec, count=12, seed=3)
    assert all(torch.equal(a.y, b.y) for a, b in zip(cases, again))


def test_a_knet_that_ignores_its_input_scores_zero_correlation(tmp_path):
    config = sr_config(4)
    guide = VIRNetGuide(config, TINY_GUIDE)
    with torch.no_grad():
        guide.knet.tail[0].weight.zero_()  # the output is the tail conv's bias, whatever y is
    cases = kernel_validation_set(_photos(tmp_path / "val"), DegradationSpec(task="sr", scale=4, patch_size=64), 16, 0)
    assert kernel_tracking(guide, cases, torch.device("cpu")) == {"r_lambda1": 0.0, "r_lambda2": 0.0, "r_rho": 0.0}


def test_restoration_scores_report_psnr_and_the_noise_level_error_in_255_units():
    config = sr_config(2)
    guide = VIRNetGuide(config, TINY_GUIDE)
    y = torch.rand(2, 3, 12, 12)
    sigma = torch.full((2, 1, 12, 12), 10 / 255)
    batch = {"y": y, "x": torch.rand(2, 3, 24, 24), "sigma": sigma}
    scores = restoration_scores(guide, batch, torch.device("cpu"))
    beta = torch.cat([guide.posterior(y[i : i + 1]).beta for i in range(2)])
    expected = (beta.sqrt() - sigma).abs().mean().item() * 255
    assert scores["val_sigma_error"] == pytest.approx(expected, rel=1e-4)
    assert math.isfinite(scores["val_psnr"])


def test_a_briefly_trained_knet_tracks_the_kernel_of_held_out_images(tracking_run):
    """Fails if KNet's output does not depend on y (r = 0) or does not follow Λ."""
    with (tracking_run / "metrics.csv").open() as f:
        rows = [row for row in csv.DictReader(f) if row["val_r_rho"]]
    first, last = rows[0], rows[-1]
    assert int(last["step"]) == 200
    r = {p: float(last[f"val_r_{p}"]) for p in ("lambda1", "lambda2", "rho")}
    # 64 validation cases: |r| > 0.25 is beyond chance (2 standard errors) for one parameter,
    # a mean over three above 0.3 far beyond it; 200 tiny steps leave some parameters behind.
    assert sum(r.values()) / 3 > 0.3, r
    assert min(r.values()) > 0.15, r
    assert float(last["grad_knet"]) > 0 and float(first["clipped_rnet"]) >= 0
