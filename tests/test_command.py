"""`virnet train` and `virnet plot-log` from the command line."""

import imageio.v3 as iio
import numpy as np
import pytest

from cli import main

TINY = ["guide.snet_features=8", "guide.snet_depth=3", "guide.rnet_widths=[8, 16]", "guide.rnet_blocks=1",
        "data.patch_size=32", "data.batch_size=2", "data.workers=0", "data.val_images=1", "run.log_every=1"]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        iio.imwrite(folder / f"p{i}.png", (rng.random((40, 40, 3)) * 255).astype(np.uint8))
    return folder


def test_train_then_resume_then_plot_the_log(photos, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--config", "denoise-niid-cpu", "--data", str(photos), "--out", str(out), "--no-progress", *TINY]
    assert main([*args, "--steps", "3"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    assert main([*args, "--steps", "3"]) == 2, "an existing run is never overwritten"
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--steps", "5", "--resume"]) == 0
    assert main(["plot-log", str(out)]) == 0
    assert (out / "metrics.png").stat().st_size > 0
    assert main(["plot-log", str(out)]) == 2, "the PNG is not replaced without --overwrite"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--config", "no-such-preset", "--data", "."], "unknown preset"),
        (["--config", "denoise-niid-cpu"], "--data is required"),
        (["--config", "denoise-niid-cpu", "--data", "/no/such/folder"], "not found"),
        (["--config", "denoise-niid-cpu", "--data", ".", "optim.nonsense=1"], "unknown key"),
    ],
)
def test_bad_training_input_is_one_line_and_exit_2(extra, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_overrides_may_stand_on_both_sides_of_an_option(photos, tmp_path, capsys):
    out = tmp_path / "run"
    first, rest = TINY[:2], TINY[2:]
    args = ["train", "--config", "denoise-niid-cpu", *first, "--data", str(photos), *rest, "--out", str(out),
            "--no-progress", "--steps", "2", "optim.lr=3e-4"]
    assert main(args) == 0
    config = (out / "config.toml").read_text()
    assert "snet_features = 8" in config and "batch_size = 2" in config and "lr = 0.0003" in config


def test_an_unknown_option_after_the_overrides_is_still_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--config", "denoise-niid-cpu", "--data", ".", "optim.lr=3e-4", "--no-such-option"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unrecognized arguments: --no-such-option" in err and len(err.splitlines()) == 1
