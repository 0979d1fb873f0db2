"""Training curves from a run's metrics.csv, drawn with matplotlib."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

PANELS = (
    ("negative ELBO per pixel", ("loss",)),
    ("ELBO terms per pixel", ("likelihood", "kl_z", "kl_sigma2", "kl_kernel")),
    ("validation PSNR (dB)", ("val_psnr",)),
    ("learning rate", ("lr",)),
)


def read_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Column name -> [(step, value)] for every non-empty cell of metrics.csv."""
    if not path.is_file():
        raise ValueError(f"log not found: {path}")
    series: dict[str, list[tuple[int, float]]] = {}
    with path.open() as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "step" not in reader.fieldnames:
            raise ValueError(f"{path} is not a training metrics.csv (no 'step' column)")
        for row in reader:
            for key, value in row.items():
                if key != "step" and value not in ("", None):
                    series.setdefault(key, []).append((int(row["step"]), float(value)))
    if not series:
        raise ValueError(f"{path} holds no logged steps yet")
    return series


def plot_log(log: Path, output: Path) -> None:
    """Draw loss, ELBO terms, validation PSNR and learning rate against the step."""
    series = read_log(log)
    fig = Figure(figsize=(11, 7))  # no pyplot: leaves the caller's backend alone
    axes = fig.subplots(2, 2)
    for ax, (title, keys) in zip(axes.flat, PANELS):
        for key in keys:
            if key in series:
                steps, values = zip(*series[key])
                ax.plot(steps, values, label=key, marker="o" if key == "val_psnr" else None, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        if keys == ("loss",) or keys[0] == "likelihood":
            ax.set_yscale("symlog")
        if len(keys) > 1:
            ax.legend()
    fig.tight_layout()
    handle, temp = tempfile.mkstemp(suffix=".png", dir=output.parent)
    os.close(handle)
    try:
        fig.savefig(temp)
        os.replace(temp, output)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
