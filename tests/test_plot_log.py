"""`virnet plot-log` draws a run's metrics.csv to PNG."""

import csv

import pytest

from training.plot_log import plot_log, read_log


def write_log(path, rows):
    columns = ["step", "loss", "likelihood", "kl_z", "kl_sigma2", "kl_kernel", "lr", "val_psnr"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_plot_log_writes_a_png_with_every_logged_series(tmp_path):
    rows = [
        {"step": s, "loss": 100 / s, "likelihood": 1, "kl_z": 90 / s, "kl_sigma2": 1, "kl_kernel": 0, "lr": 1e-3,
         "val_psnr": 20 + s if s % 5 == 0 else ""}
        for s in range(1, 21)
    ]
    write_log(tmp_path / "metrics.csv", rows)
    series = read_log(tmp_path / "metrics.csv")
    assert [s for s, _ in series["val_psnr"]] == [5, 10, 15, 20]
    plot_log(tmp_path / "metrics.csv", tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_file_that_is_not_a_training_log_is_a_clear_error(tmp_path):
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a training metrics.csv"):
        read_log(tmp_path / "other.csv")
    with pytest.raises(ValueError, match="log not found"):
        read_log(tmp_path / "missing.csv")
