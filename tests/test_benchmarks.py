"""`virnet bench NAME`: every protocol end to end in --quick mode, its report and its sanity values."""

import argparse
import json
import math
import shlex

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from benchmarks import ablation, denoise_iid, denoise_niid, protocol
from benchmarks.cases import table1_sigma_map
from benchmarks.catalogue import BENCHMARKS
from benchmarks.metrics import lpips_or_none, psnr_rgb
from benchmarks.quick_images import quick_images
from benchmarks.report import validate_result
from tests.checkpoints import tiny_guide, write_tiny_checkpoint
from tests.helpers import rows_by_key, write_random_photos
from training.images import find_images, holdout_split
import cli
from virnet import models

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = {
    "denoise-niid": ("comparison.png", "psnr_vs_noise.png"),
    "denoise-iid": ("comparison.png", "psnr_vs_noise.png"),
    "denoise-real": ("comparison.png",),
    "sr": ("comparison.png", "psnr_vs_noise.png"),
    "noise-estimation": ("comparison.png", "sigma_vs_noise.png"),
    "kernel-estimation": ("kernels.png", "kernel_mse_vs_noise.png"),
    "calibration": ("reliability.png", "pit_histograms.png"),
    "profile": (),
    "ablation": ("comparison.png", "ablation_factorization.png", "ablation_backbone.png"),
}


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_protocol_writes_a_valid_report_with_its_facts_and_figures(quick, name):
    result, out = quick(name)
    validate_result(result)
    assert result["image_count"] == (0 if name == "profile" else 2)
    assert result["seed"] == 1000 and result["device"].startswith("cpu")
    assert result["command"].startswith(f"virnet bench {name} ") and "--quick" in result["command"]
    markdown = (out / "report.md").read_text()
    for fact in ("- Dataset: ", "- Images: ", "- Model: ", "- Device: cpu", "- Seed: 1000", "- Command: `virnet bench"):
        assert fact in markdown
    for figure in FIGURES[name]:
        assert (out / figure).read_bytes().startswith(PNG_MAGIC)
    for row in result["rows"]:
        for column, value in row.items():
            if isinstance(value, float):
                assert math.isfinite(value), (row["key"], column)


@pytest.mark.parametrize("name", ["denoise-niid", "denoise-iid", "denoise-real", "sr"])
def test_ground_truth_scores_infinite_psnr_and_unit_ssim(quick, name):
    rows = [r for r in quick(name)[0]["rows"] if r["method"] == "ground-truth"]
    assert rows
    assert all(r["psnr"] == "inf" and r["ssim"] == pytest.approx(1.0) for r in rows)


def test_identity_scores_the_psnr_of_the_noisy_input(quick):
    """The protocol's noise, rebuilt by hand: N(0,1)·σ from default_rng(1000), no clipping."""
    images = quick_images(2, 48)
    iid = rows_by_key(quick("denoise-iid")[0])
    niid = rows_by_key(quick("denoise-niid")[0])
    for sigma in (15, 25, 50):
        rng = np.random.default_rng(1000)
        noisy = [x + torch.from_numpy(rng.standard_normal(x.shape)).float() * sigma / 255 for _, x in images]
        expected = np.mean([psnr_rgb(y, x) for y, (_, x) in zip(noisy, images)])
        assert iid[f"sigma{sigma}/identity"]["psnr"] == pytest.approx(expected, abs=1e-9)
    rng = np.random.default_rng(1000)
    noisy = [x + torch.from_numpy(rng.standard_normal(x.shape)).float() * table1_sigma_map(2, 48, 48) for _, x in images]
    expected = np.mean([psnr_rgb(y, x) for y, (_, x) in zip(noisy, images)])
    assert niid["case2/identity"]["psnr"] == pytest.approx(expected, abs=1e-9)
    assert niid["case2/nlm"]["psnr"] > niid["case2/identity"]["psnr"]


def test_paper_numbers_sit_next_to_ours(quick):
    assert quick("denoise-niid")[0]["paper"]["case1/virnet"] == {"psnr": 29.28, "ssim": 0.8353}
    assert quick("denoise-iid")[0]["paper"]["sigma25/virnet"]["psnr"] == 31.65
    sr_paper = quick("sr")[0]["paper"]
    assert sr_paper["x4/avg/noise2.55/virnet"]["psnr"] == 27.18
    assert sr_paper["x4/avg/noise0.1/bicubic"]["psnr"] == 24.54
    assert quick("kernel-estimation")[0]["paper"]["avg/noise2.55/virnet"] == {"kernel_mse": 0.89e-5}
    assert "not on this dataset" in " ".join(quick("denoise-niid")[0]["notes"])


@pytest.mark.parametrize("name, key", [("denoise-niid", "case2"), ("sr", "x4/avg/noise2.55")])
def test_compare_model_is_scored_beside_the_model_on_the_same_cases(quick, name, key):
    result = quick(name)[0]
    rows = rows_by_key(result)
    assert rows[f"{key}/compare"]["psnr"] == rows[f"{key}/virnet"]["psnr"]  # the same tiny model twice
    assert "compare: " in result["model"]


def test_oracle_kernel_scores_the_model_given_the_true_kernel_beside_it(quick):
    rows = rows_by_key(quick("sr")[0])
    assert isinstance(rows["x4/avg/noise2.55/virnet-true-kernel"]["psnr"], float)
    assert rows["x4/avg/noise2.55/virnet-true-kernel"]["psnr"] != rows["x4/avg/noise2.55/virnet"]["psnr"]
    assert "x2/avg/noise2.55/virnet-true-kernel" not in rows, "no model for ×2, so no oracle either"


def test_the_true_kernel_method_is_the_blind_restore_with_knets_kernel_swapped_for_the_true_one():
    from benchmarks.sr import sr_cases, true_kernel_method
    from generative.kernels import gaussian_kernel

    guide = tiny_guide("sr", 2)
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    blind = protocol.model_method(guide)
    lambdas = torch.tensor([0.5, 0.3, 0.2])
    case = sr_cases([("img", x)], 2, gaussian_kernel(lambdas[None, :2], lambdas[None, 2], 21)[0], 2.55, 0, lambdas)[0]
    estimated = blind(case)
    as_if_true = protocol.Case(case.name, case.x, case.y, case.sigma, estimated.kernel, estimated.kernel_params)
    oracle = true_kernel_method(guide)
    assert torch.allclose(oracle(as_if_true).image, estimated.image, atol=1e-5), "KNet's own Λ: the blind restore"
    assert not torch.allclose(oracle(case).image, estimated.image, atol=1e-3), "the true Λ reaches RNet"
    assert torch.equal(oracle(case).kernel_params, lambdas)


def test_sr_marks_scales_without_a_model_and_lpips_without_weights(quick):
    rows = rows_by_key(quick("sr")[0])
    assert rows["x2/avg/noise2.55/virnet"]["psnr"] == "n/a (no model for ×2)"
    assert "x2/iso0.4/noise2.55/virnet" not in rows
    assert isinstance(rows["x4/iso0.4/noise2.55/virnet"]["psnr"], float)
    assert isinstance(rows["x2/avg/noise2.55/bicubic"]["psnr"], float)
    per_kernel = [r for r in rows.values() if r["scale"] == 4 and r["noise"] == 2.55 and r["method"] == "bicubic"]
    assert len(per_kernel) == 8  # 7 kernels and their average
    assert rows["x4/avg/noise2.55/bicubic"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in per_kernel[1:]]))
    lpips = rows["x4/avg/noise2.55/bicubic"]["lpips"]
    if lpips_or_none(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8)) is None:
        assert lpips == "n/a (lpips weights not available)"
    else:
        assert isinstance(lpips, float)


def test_noise_estimation_scores_the_truth_as_exact_and_skimage_as_close_on_awgn(quick):
    rows = rows_by_key(quick("noise-estimation")[0])
    for setting in ("sigma15", "sigma25", "sigma50", "case1", "case2", "case3"):
        truth = rows[f"{setting}/ground-truth"]
        assert truth["map_error"] == 0 and truth["mean_error"] == 0
        assert truth["sigma_true"] == pytest.approx(truth["sigma_est"])
        assert isinstance(rows[f"{setting}/virnet"]["map_error"], float)
    assert rows["sigma25/skimage"]["sigma_true"] == pytest.approx(25.0)
    assert rows["sigma25/skimage"]["mean_error"] < 3.0


def test_kernel_estimation_covers_the_four_anisotropic_kernels_and_the_best_constant(quick):
    rows = rows_by_key(quick("kernel-estimation")[0])
    assert {r["kernel"] for r in rows.values()} == {"aniso1", "aniso2", "aniso3", "aniso4", "avg"}
    truth, delta, constant = (rows[f"avg/noise2.55/{m}"] for m in ("ground-truth", "delta", "constant"))
    assert truth["kernel_mse"] == 0 and truth["err_rho"] == 0
    assert (truth["r_lambda1"], truth["r_lambda2"], truth["r_rho"]) == pytest.approx((1, 1, 1))
    assert (constant["r_lambda1"], constant["r_lambda2"], constant["r_rho"]) == (0, 0, 0)
    assert constant["kernel_mse"] < delta["kernel_mse"] / 10, "the best constant beats the delta kernel by far"
    assert {"err_lambda1", "err_lambda2", "err_rho", "r_lambda1", "r_lambda2", "r_rho"} <= set(rows["avg/noise2.55/virnet"])
    for method in ("ground-truth", "delta", "constant"):  # no estimate that ignores the photo errs per photo
        assert rows[f"avg/noise2.55/{method}"]["image_share_lambda1"] == pytest.approx(0, abs=1e-9), method
    assert 0 <= rows["avg/noise2.55/virnet"]["image_share_lambda2"] <= 1
    for method in ("ground-truth", "delta", "constant"):
        assert rows[f"avg/noise2.55/{method}"]["sharpness_r_lambda1"] == 0, method
    assert -1 <= rows["avg/noise2.55/virnet"]["sharpness_r_lambda2"] <= 1
    model = rows["avg/noise2.55/virnet"]
    for name in ("lambda1", "lambda2", "rho"):
        assert model[f"r_{name}_lo"] <= model[f"r_{name}_hi"], name
        assert truth[f"r_{name}_lo"] == pytest.approx(1) and truth[f"r_{name}_hi"] == pytest.approx(1), name


def test_image_share_tells_an_error_that_follows_the_photo_from_one_that_follows_the_kernel():
    from benchmarks.kernel_estimation import image_share

    images = ["a", "a", "a", "b", "b", "b"]
    truths = torch.tensor([[1.0, 2.0, 0.0], [2.0, 3.0, 0.0], [4.0, 5.0, 0.0]]).repeat(2, 1)
    per_photo = torch.tensor([1.5] * 3 + [0.5] * 3)[:, None]
    per_kernel = torch.tensor([1.5, 0.5, 1.0] * 2)[:, None]
    assert image_share(truths * per_photo, truths, images)["image_share_lambda1"] == pytest.approx(1)
    assert image_share(truths * per_kernel, truths, images)["image_share_lambda2"] == pytest.approx(0)
    both = image_share(truths * per_photo * per_kernel, truths, images)["image_share_lambda1"]
    assert 0.1 < both < 0.9


def test_sharpness_correlation_is_minus_one_when_sharper_photos_get_narrower_kernels():
    from benchmarks.kernel_estimation import sharpness_correlation

    images = ["a", "a", "b", "b", "c", "c"]
    truths = torch.tensor([[1.0, 2.0, 0.0], [2.0, 3.0, 0.0]]).repeat(3, 1)
    sharpness = {"a": (0.3, 0.9), "b": (0.5, 0.5), "c": (0.8, 0.3)}  # along x, along y
    along_x = torch.tensor([2.0, 2.0, 1.0, 1.0, 0.5, 0.5])[:, None] * torch.tensor([[1.0, 1.0, 1.0]])
    scores = sharpness_correlation(truths * along_x, truths, images, sharpness)
    assert scores["sharpness_r_lambda1"] == pytest.approx(-1, abs=0.05)  # x is the axis λ1² reads
    assert scores["sharpness_r_lambda2"] == pytest.approx(0.98, abs=0.05)  # y runs opposite to x here
    exact = sharpness_correlation(truths, truths, images, sharpness)
    assert exact == {"sharpness_r_lambda1": 0.0, "sharpness_r_lambda2": 0.0}


def _photo_offset_cases(photos: int, kernels: int = 7, seed: int = 0):
    """(estimates, truths, images): `kernels` true Λ per photo, each photo's estimates off by
    its own random factor (the error that follows the photo) and a little per-case noise."""
    generator = torch.Generator().manual_seed(seed)
    widths = torch.linspace(0.5, 4.0, kernels)
    truths = torch.stack([widths, widths, torch.linspace(-0.5, 0.5, kernels)], 1).repeat(photos, 1)
    offset = (0.3 * torch.randn(photos, 1, generator=generator)).exp().repeat_interleave(kernels, 0)
    noise = 1 + 0.05 * torch.randn(photos * kernels, 3, generator=generator)
    rho_error = 0.3 * torch.randn(photos * kernels, 1, generator=generator)
    estimates = torch.cat([truths[:, :2] * offset, truths[:, 2:] + rho_error], 1)
    return estimates * noise, truths, [f"p{i // kernels}" for i in range(photos * kernels)]


def test_correlation_interval_holds_r_and_narrows_with_more_photos_not_more_cases_per_photo():
    from benchmarks.kernel_estimation import correlation_intervals
    from training.validation import kernel_correlations

    estimates, truths, images = _photo_offset_cases(8)
    interval = correlation_intervals(estimates, truths, images)
    r = kernel_correlations(estimates, truths)
    for name in ("lambda1", "lambda2", "rho"):
        assert interval[f"r_{name}_lo"] < r[f"r_{name}"] < interval[f"r_{name}_hi"], name
    width = interval["r_lambda1_hi"] - interval["r_lambda1_lo"]
    many = correlation_intervals(*_photo_offset_cases(512))
    assert many["r_lambda1_hi"] - many["r_lambda1_lo"] < width / 2, "64× the photos: a much narrower interval"
    # Every case twice, same photos: nothing new is known about r, so the interval stays (a
    # bootstrap over cases would narrow it by √2).
    doubled = correlation_intervals(estimates.repeat(2, 1), truths.repeat(2, 1), images * 2)
    assert doubled == pytest.approx(interval)
    exact = correlation_intervals(truths, truths, images)
    assert exact == pytest.approx({k: 1.0 for k in interval})


@pytest.mark.parametrize("scale", [2, 3])
def test_kernel_estimation_scores_the_test_kernels_of_the_chosen_scale(tmp_path, scale):
    from benchmarks.kernel_estimation import best_constant_lambda
    from benchmarks.cases import benchmark_kernel_lambdas

    torch.set_num_threads(1)
    model = write_tiny_checkpoint(tmp_path, "sr", scale)
    argv = ["bench", "kernel-estimation", "--quick", "--scale", str(scale), "--kernels", "all", "--model", str(model),
            "--baselines", "constant", "ground-truth", "--device", "cpu", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert f"×{scale}" in (tmp_path / "out" / "report.md").read_text() and not result["paper"], "Table 9 is a ×4 table"
    rows = rows_by_key(result)
    assert len({r["kernel"] for r in rows.values()}) == 8, "the 7 test kernels and their average"
    assert rows["avg/noise2.55/ground-truth"]["kernel_mse"] == 0
    assert not torch.allclose(best_constant_lambda(scale), best_constant_lambda(4)), "the constant follows the scale's kernels"
    assert benchmark_kernel_lambdas(scale).shape == (7, 3)


def _constant_knet_checkpoint(folder):
    """The tiny ×4 checkpoint with KNet's tail weights zeroed: the same kernel for every y."""
    from training.checkpoint import load_weights, save_weights

    path = write_tiny_checkpoint(folder, "sr", 4, name="constant-knet")
    state, metadata = load_weights(path)
    state["knet.tail.0.weight"] = torch.zeros_like(state["knet.tail.0.weight"])
    save_weights(path, state, metadata)
    return path


def test_kernel_estimation_tells_a_knet_that_tracks_the_kernel_from_a_constant_one(tracking_run, tmp_path):
    """The benchmark scores the briefly trained KNet (tests.helpers.train_tracking_guide) on its
    held-out photos against a model whose KNet ignores y: only the first may correlate."""
    scores = {}
    models = {"tracking": (tracking_run / "model.safetensors", 16), "constant": (_constant_knet_checkpoint(tmp_path), 4)}
    for label, (model, per_image) in models.items():
        out = tmp_path / label
        argv = ["bench", "kernel-estimation", "--data", str(tracking_run.parent / "heldout"), "--model", str(model),
                "--kernels", "random", "--per-image", str(per_image), "--noises", "1", "--baselines", "constant",
                "--device", "cpu", "--out", str(out)]
        assert cli.main(argv) == 0
        scores[label] = rows_by_key(json.loads((out / "result.json").read_text()))
    for parameter in ("lambda1", "lambda2", "rho"):
        assert scores["constant"]["avg/noise1/virnet"][f"r_{parameter}"] == 0
        assert scores["tracking"]["avg/noise1/virnet"][f"r_{parameter}"] > 0.25, parameter
    assert scores["tracking"]["avg/noise1/virnet"]["err_rho"] < scores["tracking"]["avg/noise1/constant"]["err_rho"]


def test_profile_counts_the_paper_models_like_the_paper(quick):
    rows = rows_by_key(quick("profile")[0])
    denoiser, upscaler = rows["paper-denoise"], rows["paper-sr-x4"]
    assert denoiser["params_m"] == pytest.approx(10.54, rel=0.01)  # Table 3
    assert denoiser["gmacs"] == pytest.approx(680, rel=0.05) and denoiser["size"] == "512×512"
    assert denoiser["gflops"] == pytest.approx(2 * denoiser["gmacs"])
    assert upscaler["knet_m"] > 0 and upscaler["size"] == "256×256"
    tiny = tiny_guide()
    assert next(r for r in rows.values() if r["key"].endswith(".safetensors"))["params_m"] == pytest.approx(
        sum(p.numel() for p in tiny.parameters()) / 1e6
    )
    assert all(r["runtime_s"] > 0 for r in rows.values())


def test_ablation_reports_every_variant_with_its_spread_and_shares_identical_runs(quick):
    result, out = quick("ablation")
    rows = rows_by_key(result)
    expected = {f"{group}/{v.label}" for group, g in ablation.GROUPS.items() for v in g.variants}
    assert set(rows) == expected
    assert all(r["seeds"] == 2 and r["steps"] == 2 and r["psnr_sd"] >= 0 for r in rows.values())
    assert rows["eps0/1e-6"]["delta_psnr"] == "reference"
    assert rows["eps0/1e-4"]["reference"] == "1e-6" and isinstance(rows["eps0/1e-4"]["delta_psnr"], float)
    # ε0² = 1e-6, p = 7 and ResUNet + ELBO are one configuration, trained once.
    assert rows["eps0/1e-6"]["psnr"] == rows["window/7"]["psnr"] == rows["backbone/resunet-elbo"]["psnr"]
    assert not (out / "runs" / "window-7").exists()
    assert (out / "runs" / "backbone-dncnn-mse" / "seed1" / "model.safetensors").is_file()
    assert result["paper"]["backbone/unet-elbo"]["delta_psnr"] == pytest.approx(0.27)


def test_recorded_command_line_reproduces_the_arguments(quick):
    command = quick("sr")[0]["command"]
    words = shlex.split(command)[1:]
    args = cli.build_parser(words[0]).parse_args(words)
    assert args.scales == [2, 4] and args.baselines == ["bicubic", "identity", "ground-truth"]
    assert args.quick and args.seed == 1000 and args.noises == [0.1, 2.55, 7.65]


def test_an_existing_result_is_kept_without_overwrite(tmp_path, weights, capsys):
    argv = ["bench", "denoise-real", "--quick", "--device", "cpu", "--out", str(tmp_path), "--model",
            str(weights["denoise"]), "--baselines", "identity"]
    assert cli.main(argv) == 0
    before = (tmp_path / "result.json").read_text()
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "result.json").read_text() == before
    assert cli.main([*argv, "--overwrite"]) == 0


def test_holdout_and_limit_choose_the_images(tmp_path, weights):
    photos = write_random_photos(tmp_path / "photos", 20, 32)
    out = tmp_path / "out"
    status = denoise_iid.main(["--data", str(photos), "--holdout", "--limit", "1", "--sigmas", "25", "--device",
                               "cpu", "--model", str(weights["denoise"]), "--baselines", "identity", "--out", str(out)])
    assert status == 0
    result = json.loads((out / "result.json").read_text())
    assert result["image_count"] == 1 and "held-out split" in result["dataset"]
    args = argparse.Namespace(quick=False, data=photos, holdout=True, limit=None)
    names = [name for name, _ in protocol.select_images(args)[1]]
    training = holdout_split(find_images(photos), 0.1, seed=0)[0]
    assert len(names) == 2 and set(names).isdisjoint(path.stem for path in training)


def test_denoise_real_reads_sidd_validation_blocks_and_folders_of_pairs(tmp_path, weights):
    rng = np.random.default_rng(0)
    clean = rng.integers(20, 236, (1, 2, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(clean + rng.integers(-20, 21, clean.shape), 0, 255).astype(np.uint8)
    sidd = tmp_path / "sidd"
    sidd.mkdir()
    scipy.io.savemat(sidd / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(sidd / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": clean})
    pairs = tmp_path / "pairs"
    for kind, blocks in (("noisy", noisy), ("clean", clean)):
        (pairs / kind / "scene").mkdir(parents=True)
        for i in range(2):
            iio.imwrite(pairs / kind / "scene" / f"b{i}.png", blocks[0, i])
    results = []
    for data in (sidd, pairs):
        out = tmp_path / f"out-{data.name}"
        argv = ["bench", "denoise-real", "--data", str(data), "--device", "cpu", "--out", str(out),
                "--model", str(weights["denoise"]), "--baselines", "identity"]
        assert cli.main(argv) == 0
        results.append(json.loads((out / "result.json").read_text()))
    for result in results:
        assert result["image_count"] == 2
        noisy_psnr = np.mean([psnr_rgb(noisy[0, i].T / 255.0, clean[0, i].T / 255.0) for i in range(2)])
        assert rows_by_key(result)["real/identity"]["psnr"] == pytest.approx(noisy_psnr)
    assert "SIDD validation blocks" in results[0]["dataset"]
    assert results[0]["paper"]["real/virnet"] == {"psnr": 39.63, "ssim": 0.9194}
    assert results[1]["paper"] == {}


def test_bad_input_is_one_clear_error_line(tmp_path, monkeypatch, capsys):
    assert denoise_niid.main(["--out", str(tmp_path / "a"), "--device", "cpu"]) == 2
    assert "--data DIR is required" in capsys.readouterr().err
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "no-weights")
    assert denoise_niid.main(["--quick", "--out", str(tmp_path / "b"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no embedded model named 'denoise'" in err[0]


def test_mse_objective_is_the_plain_mse_of_the_posterior_mean():
    guide = tiny_guide()
    y, x = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    objective = ablation.MSEObjective(guide)
    loss = objective(y, x)
    assert loss.item() == pytest.approx(F.mse_loss(guide.posterior(y).mu, x).item())
    assert objective.elbo.terms["likelihood"] == pytest.approx(-loss.item())
    assert set(objective.elbo.terms) == {"likelihood", "kl_z", "kl_sigma2", "kl_kernel"}
    loss.backward()
    assert guide.rnet.tail.weight.grad is not None


@pytest.mark.slow
def test_bm3d_given_the_true_sigma_beats_the_noisy_input(tmp_path, weights):
    pytest.importorskip("bm3d")
    out = tmp_path / "bm3d"
    status = denoise_iid.main(["--quick", "--limit", "1", "--sigmas", "50", "--device", "cpu", "--out", str(out),
                               "--model", str(weights["denoise"]), "--baselines", "bm3d", "identity"])
    assert status == 0
    rows = rows_by_key(json.loads((out / "result.json").read_text()))
    assert rows["sigma50/bm3d"]["psnr"] > rows["sigma50/identity"]["psnr"] + 3
