"""`virnet bench calibration`: which laws it scores, read from the guide's and the model's own traces."""

import argparse
import itertools
import json

import pytest
import torch

from benchmarks import calibration, protocol
from benchmarks.baselines import estimate_sigma_skimage
from benchmarks.quick_images import quick_images
from generative.conjugate import sigma2_posterior
from generative.variance_prior import variance_prior_estimate
from tests.checkpoints import tiny_guide, write_tiny_checkpoint
from tests.helpers import rows_by_key


@pytest.fixture(scope="module")
def case():
    images = quick_images(1, 48)
    return protocol.noisy_cases(images, lambda h, w: torch.full((1, h, w), 25 / 255), seed=0)[0]


def test_sigma2_laws_are_the_guide_the_prior_the_conjugate_posterior_and_the_mad_baseline(case):
    guide = tiny_guide()
    cfg = guide.model_config
    hx = case.x[None]
    virnet = calibration.guide_laws(guide, case.y[None])["sigma2"]
    laws = calibration.sigma2_laws(guide, case, hx, None, virnet)
    assert set(laws) == set(calibration.SIGMA2_METHODS)
    with torch.no_grad():
        beta = guide.posterior(case.y[None]).beta
    assert torch.allclose(laws["virnet"][0].rate, cfg.alpha0 * beta)
    assert torch.all(laws["virnet"][0].shape == cfg.alpha0 - 1)
    xi = variance_prior_estimate(case.y[None], hx, cfg.window)
    assert torch.allclose(laws["prior"][0].rate, cfg.alpha0 * xi) and torch.all(laws["prior"][0].shape == cfg.alpha0 - 1)
    shape, rate = sigma2_posterior(torch.full_like(xi, cfg.alpha0 - 1), cfg.alpha0 * xi, case.y[None], hx)
    assert torch.allclose(laws["oracle"][0].rate, rate) and torch.allclose(laws["oracle"][0].shape, shape)
    assert torch.all(laws["oracle"][0].shape == cfg.alpha0 - 1 + 3 / 2)  # one σ² shared by 3 channels
    mad = cfg.alpha0 * estimate_sigma_skimage(case.y) ** 2
    assert torch.allclose(laws["mad"][0].rate, torch.tensor(mad))


def test_one_law_per_image_is_the_geometric_mean_of_the_rates_and_the_oracle_pools_every_residual(case):
    guide = tiny_guide()
    cfg = guide.model_config
    virnet = calibration.guide_laws(guide, case.y[None])["sigma2"]
    laws = calibration.sigma2_laws(guide, case, case.x[None], None, virnet)
    image = laws["virnet"][1]
    assert image.rate.item() == pytest.approx(virnet.rate.double().log().mean().exp().item(), rel=1e-6)
    pooled = laws["oracle"][1]
    residuals = ((case.y - case.x) ** 2).sum().item()
    assert pooled.shape.item() == pytest.approx(cfg.alpha0 - 1 + case.y.numel() / 2)
    assert pooled.rate.item() == pytest.approx(laws["prior"][0].rate.mean().item() + residuals / 2, rel=1e-5)
    # With 3·48² residuals the pooled posterior's mean is the residuals' mean square, within 1 %.
    assert (pooled.rate / (pooled.shape - 1)).item() == pytest.approx(residuals / case.y.numel(), rel=0.01)


def test_sr_guide_laws_include_each_kernel_component():
    guide = tiny_guide("sr", 4)
    y = torch.rand(1, 3, 12, 12)
    laws = calibration.guide_laws(guide, y)
    with torch.no_grad():
        post = guide.posterior(y)
    cfg = guide.model_config
    assert laws["lambda2_1"].rate.item() == pytest.approx(cfg.kappa0 * post.eta[0, 0].item(), rel=1e-5)
    assert laws["lambda2_2"].shape.item() == pytest.approx(cfg.kappa0 - 1)
    assert laws["rho"].loc.item() == pytest.approx(post.m[0].item(), abs=1e-6)
    assert laws["rho"].scale.item() == pytest.approx(cfg.r0_sq**0.5)


def test_models_are_chosen_per_task_and_refused_twice(tmp_path):
    denoiser = str(write_tiny_checkpoint(tmp_path, "denoise"))
    upscaler = str(write_tiny_checkpoint(tmp_path, "sr", 2))
    args = argparse.Namespace(model=[denoiser, upscaler], tasks=["sr"])
    assert list(calibration.guides_for(args, torch.device("cpu"))) == [("sr", 2)]
    with pytest.raises(ValueError, match="two models for the same task"):
        calibration.guides_for(argparse.Namespace(model=[denoiser, denoiser], tasks=["denoise"]), "cpu")
    with pytest.raises(ValueError, match="no model for the tasks sr"):
        calibration.guides_for(argparse.Namespace(model=[denoiser], tasks=["sr"]), "cpu")


def test_a_zero_noise_level_is_one_error_line(tmp_path, capsys):
    assert calibration.main(["--quick", "--sigmas", "0", "--out", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("virnet: error: --sigmas and --noises must be positive")
    assert not (tmp_path / "result.json").exists()


@pytest.mark.gpu
def test_calibration_on_cuda_scores_like_on_the_cpu(tmp_path):
    models = [str(write_tiny_checkpoint(tmp_path, "denoise")), str(write_tiny_checkpoint(tmp_path, "sr", 4))]
    results = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        argv = ["--quick", "--device", device, "--out", str(out), "--sigmas", "25", "--noises", "2.55", "--model", *models]
        assert calibration.main(argv) == 0
        results[device] = {row["key"]: row for row in json.loads((out / "result.json").read_text())["rows"]}
    assert results["cpu"].keys() == results["cuda"].keys()
    for key, row in results["cpu"].items():
        for column in ("cov50", "cov90", "cov95", "pit_mean"):
            assert results["cuda"][key][column] == pytest.approx(row[column], abs=0.02), (key, column)


def test_calibration_scores_every_pixel_image_and_kernel_with_consistent_columns(quick):
    rows = rows_by_key(quick("calibration")[0])
    pixels = 2 * 48 * 48
    for method in calibration.SIGMA2_METHODS:
        for setting in ("case1", "case2", "case3", "sigma15", "sigma25", "sigma50"):
            assert rows[f"denoise/{setting}/sigma2-pixel/{method}"]["n"] == pixels
        for setting in ("sigma15", "sigma25", "sigma50"):
            assert rows[f"denoise/{setting}/sigma2-image/{method}"]["n"] == 2
        assert f"denoise/case1/sigma2-image/{method}" not in rows  # one σ² per image only for i.i.d. noise
        assert rows[f"denoise/all/sigma2-pixel/{method}"]["n"] == 6 * pixels
        assert rows[f"x4/noise2.55/sigma2-image/{method}"]["n"] == 7 * 2  # 7 kernels × 2 images
        assert rows[f"x4/aniso1/sigma2-pixel/{method}"]["n"] == 3 * 2 * 12 * 12  # 3 noises × 2 LR images of 12×12
    for target in calibration.KERNEL_TARGETS:
        for method in calibration.KERNEL_METHODS:
            assert rows[f"x4/all/{target}/{method}"]["n"] == 42
            assert rows[f"x4/iso0.4/{target}/{method}"]["n"] == 6
    for row in rows.values():
        assert 0 <= row["cov50"] <= row["cov90"] <= row["cov95"] <= 1
        assert row["below90"] + row["cov90"] + row["above90"] == pytest.approx(1.0)
        assert row["width90"] > 0 and 0 <= row["pit_mean"] <= 1


def test_calibration_of_the_truth_based_laws_does_not_depend_on_the_awgn_level(quick):
    """The same N(0, 1) draws scaled by σ: ξ, the residuals and the true σ² all scale by σ², so the
    PIT of σ² under the prior and the oracle cannot change (it would if σ were scored for σ²)."""
    rows = rows_by_key(quick("calibration")[0])
    for method, target in itertools.product(("prior", "oracle"), ("sigma2-pixel", "sigma2-image")):
        reference = rows[f"denoise/sigma15/{target}/{method}"]
        for sigma in (25, 50):
            row = rows[f"denoise/sigma{sigma}/{target}/{method}"]
            for column in ("cov50", "cov90", "cov95", "width90"):
                assert row[column] == pytest.approx(reference[column], rel=1e-4, abs=1e-9)
    # ρ = 0 for the isotropic kernels, the centre of the (symmetric) training law of ρ.
    assert rows["x4/iso0.4/rho/training-law"]["pit_mean"] == pytest.approx(0.5, abs=0.01)
