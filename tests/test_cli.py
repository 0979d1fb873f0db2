"""The `virnet` command line: restore, sample and demo, and one-line errors for bad input."""

import subprocess
import sys
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from tests.checkpoints import tiny_guide, write_tiny_checkpoint
import cli
from virnet import models
from virnet.image_io import read_image


def rgb(height=24, width=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def denoiser(tmp_path):
    (tmp_path / "models_d").mkdir()
    return write_tiny_checkpoint(tmp_path / "models_d", "denoise")


@pytest.fixture
def upscaler(tmp_path):
    (tmp_path / "models_s").mkdir()
    return write_tiny_checkpoint(tmp_path / "models_s", "sr", 2)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    iio.imwrite(path, rgb())
    return path


def assert_one_line_error(status, err, fragment):
    assert status == 2
    assert len(err) == 1, err
    assert err[0].startswith("virnet: error: ")
    assert fragment in err[0]


# Restoring


def test_restore_one_file_writes_the_posterior_mean_in_the_input_format(run, photo, denoiser, tmp_path):
    out = tmp_path / "clean.png"
    status, stdout, err = run("restore", photo, "-o", out, "--model", denoiser, "--device", "cpu", "--precision", "fp32")
    assert status == 0 and err == []
    restored = read_image(out)
    assert restored.pixels.shape == (3, 24, 20) and restored.bit_depth == 8
    pixels = torch.from_numpy(rgb()).permute(2, 0, 1).float()[None] / 255
    expected = tiny_guide().posterior(pixels).mu[0].clamp(0, 1)
    assert (restored.pixels - expected).abs().max() <= 0.5 / 255 + 1e-6
    assert "model check: residuals" in stdout and str(out) in stdout


def test_restore_computes_in_the_precision_it_is_given(run, photo, denoiser, tmp_path):
    outputs = {}
    for precision in ("fp32", "bf16"):
        outputs[precision] = tmp_path / f"{precision}.png"
        status, _, err = run("restore", photo, "-o", outputs[precision], "--model", denoiser, "--device", "cpu",
                             "--precision", precision)
        assert status == 0 and err == []
    assert not torch.equal(read_image(outputs["fp32"]).pixels, read_image(outputs["bf16"]).pixels)


def test_restore_a_folder_mirrors_its_tree_into_the_output_folder(run, denoiser, tmp_path):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    iio.imwrite(source / "a.png", rgb(seed=1))
    iio.imwrite(source / "sub" / "b.jpg", rgb(seed=2))
    status, stdout, _ = run("restore", source, "-o", tmp_path / "out", "--model", denoiser)
    assert status == 0
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")) == [
        "a.png",
        "sub/b.jpg",
    ]
    assert stdout.count("model check") == 2


def test_a_folder_restore_keeps_freed_memory_from_one_image_to_the_next(run, denoiser, tmp_path, monkeypatch):
    import cli.restoring
    from virnet import heap

    depth_at_each_restore = []
    original = cli.restoring.restore
    monkeypatch.setattr(cli.restoring, "restore",
                        lambda *a, **k: depth_at_each_restore.append(heap._depth) or original(*a, **k))
    source = tmp_path / "in"
    source.mkdir()
    for seed in range(3):
        iio.imwrite(source / f"{seed}.png", rgb(seed=seed))
    status, _, _ = run("restore", source, "-o", tmp_path / "out", "--model", denoiser)
    assert status == 0 and depth_at_each_restore == [1, 1, 1] and heap._depth == 0


def test_super_resolution_with_sigma_and_kernel_outputs(run, photo, upscaler, tmp_path):
    out = tmp_path / "big.png"
    argv = ("restore", photo, "-o", out, "--model", upscaler, "--task", "sr", "--scale", "2")
    status, stdout, _ = run(*argv, "--save-sigma", "--save-kernel")
    assert status == 0
    assert read_image(out).pixels.shape == (3, 48, 40)
    sigma = tifffile.imread(tmp_path / "big_sigma.tif")
    kernel = tifffile.imread(tmp_path / "big_kernel.tif")
    assert sigma.shape == (24, 20) and sigma.dtype == np.float32 and np.allclose(sigma, sigma[0, 0])
    assert kernel.shape == (21, 21) and kernel.sum() == pytest.approx(1, abs=1e-4)
    assert "kernel λ1²" in stdout


def test_the_scale_alone_selects_super_resolution_and_the_tile_option_is_used(run, photo, upscaler, tmp_path):
    status, _, _ = run("restore", photo, "-o", tmp_path / "a.png", "--model", upscaler, "--scale", "2", "--tile", "16")
    assert status == 0 and read_image(tmp_path / "a.png").pixels.shape == (3, 48, 40)


def test_grayscale_16_bit_stays_grayscale_16_bit_and_alpha_is_kept(run, denoiser, tmp_path):
    gray = np.random.default_rng(3).integers(0, 65536, (16, 12), dtype=np.uint16)
    iio.imwrite(tmp_path / "gray.png", gray)
    rgba = np.dstack([rgb(16, 12), np.linspace(0, 255, 16 * 12).reshape(16, 12).astype(np.uint8)])
    iio.imwrite(tmp_path / "rgba.png", rgba)
    inputs = (tmp_path / "gray.png", tmp_path / "rgba.png")
    status, _, _ = run("restore", *inputs, "-o", tmp_path / "out", "--model", denoiser)
    assert status == 0
    gray_out, rgba_out = read_image(tmp_path / "out" / "gray.png"), read_image(tmp_path / "out" / "rgba.png")
    assert gray_out.mode == "L" and gray_out.bit_depth == 16
    assert rgba_out.mode == "RGBA"
    assert torch.equal(rgba_out.alpha, read_image(tmp_path / "rgba.png").alpha)


def test_a_5_by_7_image_restores(run, denoiser, tmp_path):
    iio.imwrite(tmp_path / "tiny.png", rgb(5, 7))
    status, _, err = run("restore", tmp_path / "tiny.png", "-o", tmp_path / "out.png", "--model", denoiser)
    assert status == 0, err
    assert read_image(tmp_path / "out.png").pixels.shape == (3, 5, 7)


def test_existing_outputs_are_kept_unless_overwrite(run, photo, denoiser, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    status, _, err = run("restore", photo, "-o", out, "--model", denoiser)
    assert_one_line_error(status, err, "refusing to overwrite")
    assert out.read_bytes() == b"precious"
    status, _, _ = run("restore", photo, "-o", out, "--model", denoiser, "--overwrite")
    assert status == 0 and read_image(out).pixels.shape == (3, 24, 20)


def test_an_existing_sidecar_stops_the_run_before_anything_is_written(run, photo, denoiser, tmp_path):
    (tmp_path / "out_sigma.tif").write_bytes(b"keep")
    status, _, err = run("restore", photo, "-o", tmp_path / "out.png", "--model", denoiser, "--save-sigma")
    assert_one_line_error(status, err, "out_sigma.tif")
    assert not (tmp_path / "out.png").exists()


def test_a_bad_file_in_a_folder_fails_alone(run, denoiser, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    iio.imwrite(source / "good.png", rgb())
    (source / "broken.png").write_bytes(b"not a png")
    status, stdout, err = run("restore", source, "-o", tmp_path / "out", "--model", denoiser)
    assert_one_line_error(status, err, "broken.png")
    assert (tmp_path / "out" / "good.png").exists()
    assert not (tmp_path / "out" / "broken.png").exists()


# Bad input: one line on stderr, status 2, no output file


def truncated_png(path):
    iio.imwrite(path, rgb(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def zero_size_tiff(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tifffile.imwrite(path, np.zeros((0, 4, 3), np.uint8))


def nan_tiff(path):
    values = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    values[2, 3, 1] = np.nan
    tifffile.imwrite(path, values, photometric="rgb")


def inf_tiff(path):
    values = np.full((8, 8), np.inf, dtype=np.float32)
    tifffile.imwrite(path, values)


@pytest.mark.parametrize(
    "name, make, fragment",
    [
        ("missing.png", None, "no such file"),
        ("notes.txt", lambda p: p.write_text("hello"), "unsupported file type"),
        ("fake.png", lambda p: p.write_text("hello"), "not a valid image"),
        ("cut.png", truncated_png, "truncated"),
        ("empty.tif", zero_size_tiff, "empty"),
        ("nan.tif", nan_tiff, "NaN or infinite"),
        ("inf.tif", inf_tiff, "NaN or infinite"),
    ],
)
def test_bad_input_files(run, denoiser, tmp_path, name, make, fragment):
    source = tmp_path / name
    if make is not None:
        make(source)
    out = tmp_path / "out.png"
    status, _, err = run("restore", source, "-o", out, "--model", denoiser)
    assert_one_line_error(status, err, fragment)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_without_images(run, denoiser, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no images here")
    status, _, err = run("restore", tmp_path / "in", "-o", tmp_path / "out", "--model", denoiser)
    assert_one_line_error(status, err, "no images")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, fragment",
    [
        (("--task", "deblur"), "invalid choice: 'deblur'"),
        (("--task", "sr", "--scale", "5"), "invalid choice: 5"),
        (("--scale", "x2"), "invalid int value"),
        (("--task", "sr"), "denoising model, it cannot do task 'sr'"),
        (("--save-kernel",), "--save-kernel needs a super-resolution model"),
        (("--device", "tpu"), "device"),
        (("--tile", "0"), "tile side must be a positive integer"),
    ],
)
def test_bad_options(run, photo, denoiser, tmp_path, options, fragment):
    out = tmp_path / "out.png"
    status, _, err = run("restore", photo, "-o", out, "--model", denoiser, *options)
    assert_one_line_error(status, err, fragment)
    assert not out.exists()


def test_the_wrong_scale_for_an_sr_model(run, photo, upscaler, tmp_path):
    status, _, err = run("restore", photo, "-o", tmp_path / "out.png", "--model", upscaler, "--scale", "4")
    assert_one_line_error(status, err, "cannot do scale 4")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda p: torch.save(tiny_guide().state_dict(), p), "pickled"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "not a valid safetensors"),
        (lambda p: p.with_suffix(".json").write_text("{not json"), "cannot read JSON"),
        (lambda p: p.with_suffix(".json").unlink(), "metadata file"),
    ],
)
def test_bad_checkpoints(run, photo, denoiser, tmp_path, monkeypatch, damage, fragment):
    damage(denoiser)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the checkpoint was unpickled")

    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    status, _, err = run("restore", photo, "-o", tmp_path / "out.png", "--model", denoiser)
    assert_one_line_error(status, err, fragment)
    assert not (tmp_path / "out.png").exists()


def test_unknown_model_name_and_missing_model_file(run, photo, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "none")
    status, _, err = run("restore", photo, "-o", tmp_path / "out.png")
    assert_one_line_error(status, err, "no embedded model named 'denoise', available: none")
    status, _, err = run("restore", photo, "-o", tmp_path / "out.png", "--model", tmp_path / "gone.safetensors")
    assert_one_line_error(status, err, "no such model file")
    assert not (tmp_path / "out.png").exists()


def test_output_onto_the_input_is_refused(run, photo, denoiser):
    status, _, err = run("restore", photo, "-o", photo, "--model", denoiser, "--overwrite")
    assert_one_line_error(status, err, "would overwrite an input")


def test_usage_errors_and_help(run):
    status, _, err = run()
    assert_one_line_error(status, err, "required")
    status, _, err = run("restore", "x.png")
    assert_one_line_error(status, err, "-o/--output")
    status, _, err = run("frobnicate")
    assert_one_line_error(status, err, "invalid choice")
    status, stdout, _ = run("restore", "--help")
    assert status == 0 and "--save-sigma" in stdout


@pytest.mark.parametrize("argv", [["--help"], ["restore", "--help"], ["restore", "x.png"], ["sample"], ["frobnicate"]])
def test_help_and_usage_errors_do_not_import_torch(argv):
    """What makes `virnet --help` take seconds is importing torch (and pyro); these must not."""
    probe = f"import sys; from cli import main; main({argv!r}); print(sorted({{'torch', 'pyro'}} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr


def test_every_command_is_listed_with_the_help_its_registrar_gives():
    for name, (summary, _) in cli.COMMANDS.items():
        parser = cli.build_parser(name)
        listed = " ".join(parser.format_help().split())
        assert f"{name} {summary}" in listed, name


def test_precision_option_is_checked_before_any_work(run, photo, denoiser, tmp_path):
    status, _, err = run("restore", photo, "-o", tmp_path / "out.png", "--model", denoiser, "--precision", "fp16")
    assert_one_line_error(status, err, "invalid choice")
    assert not (tmp_path / "out.png").exists()
    status, _, err = run("restore", photo, "-o", tmp_path / "out.png", "--model", denoiser, "--precision", "fp32")
    assert status == 0, err


# Sampling and demo


def test_sample_writes_the_draws_their_mean_and_std(run, photo, denoiser, tmp_path):
    out = tmp_path / "draws"
    status, _, err = run("sample", photo, "-n", 3, "-o", out, "--model", denoiser, "--seed", 1)
    assert status == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "photo_mean.png",
        "photo_sigma000.tif",
        "photo_sigma001.tif",
        "photo_sigma002.tif",
        "photo_std.tif",
        "photo_z000.png",
        "photo_z001.png",
        "photo_z002.png",
    ]
    std = tifffile.imread(out / "photo_std.tif")
    assert std.shape == (24, 20, 3) and std.max() < 0.01


def test_sample_says_the_z_draws_only_spread_by_eps0_and_why(run, photo, denoiser, tmp_path):
    status, stdout, err = run("sample", photo, "-n", 8, "-o", tmp_path / "d", "--model", denoiser, "--seed", 0)
    assert status == 0, err
    line = next(line for line in stdout.splitlines() if "z draws" in line)
    spread = float(line.split("per-pixel std ")[1].split("/255")[0])
    assert spread == pytest.approx(255e-3 * (7 / 8) ** 0.5, rel=0.1)  # ε0 = 1e-3, std with divisor n of 8 draws
    assert "ε0 = 0.255/255" in line and "fixed by the model" in line and "not error bars" in line
    assert "σ² draws" in stdout


def test_sample_refuses_zero_draws_and_folders(run, photo, denoiser, tmp_path):
    status, _, err = run("sample", photo, "-n", 0, "-o", tmp_path / "d", "--model", denoiser)
    assert_one_line_error(status, err, "positive")
    status, _, err = run("sample", tmp_path, "-n", 2, "-o", tmp_path / "d", "--model", denoiser)
    assert_one_line_error(status, err, "one image file")
    assert not (tmp_path / "d").exists()


def test_demo_draws_the_figure_with_the_default_denoiser(run, tmp_path, monkeypatch):
    (tmp_path / "weights").mkdir()
    write_tiny_checkpoint(tmp_path / "weights", "denoise")
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "weights")
    figure = tmp_path / "demo.png"
    status, stdout, err = run("demo", "-o", figure, "--size", 48, "--device", "cpu")
    assert status == 0, err
    assert iio.imread(figure).shape[1] > 4 * iio.imread(figure).shape[0]  # five panels side by side
    assert "noisy: PSNR" in stdout and "restored: PSNR" in stdout and "model check" in stdout


def test_demo_without_default_weights_says_so(run, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "none")
    status, _, err = run("demo", "-o", tmp_path / "demo.png")
    assert_one_line_error(status, err, "no embedded model named 'denoise'")
    assert not (tmp_path / "demo.png").exists()
