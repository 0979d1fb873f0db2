"""benchmarks/inference.py: seconds per image and peak memory, smoke-run on tiny checkpoints."""

import re

import pytest
import torch

from benchmarks import inference
from tests.checkpoints import write_tiny_checkpoint
from virnet import models


def test_runs_on_tiny_checkpoints_and_prints_one_row_per_model(tmp_path, capsys):
    denoiser = write_tiny_checkpoint(tmp_path, "denoise")
    upscaler = write_tiny_checkpoint(tmp_path, "sr", 2)
    argv = ["--size", "64x64", "--repeats", "1", "--model", str(denoiser), "--model", str(upscaler), "--paper", "none"]
    assert inference.main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "s/image" in line]
    assert len(rows) == 2
    assert rows[0].startswith(str(denoiser)) and "input 64x64" in rows[0]
    assert rows[1].startswith(str(upscaler)) and "input 32x32" in rows[1]
    for row in rows:
        seconds, mib = re.search(r"([\d.]+) s/image, peak memory ([\d.]+) MiB", row).groups()
        assert float(seconds) > 0 and float(mib) >= 0


def test_says_when_no_default_weights_are_shipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "none")
    assert inference.main(["--size", "64x64", "--repeats", "1", "--paper", "none"]) == 0
    assert "no default weights are shipped yet" in capsys.readouterr().out


def test_paper_models_are_listed_without_being_built(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "none")
    labels = [label for label, _ in inference.model_candidates(None, "both", torch.device("cpu"))]
    assert labels == ["paper denoise (random init)", "paper sr-x4 (random init)"]
    assert [label for label, _ in inference.model_candidates(None, "sr", torch.device("cpu"))] == labels[1:]


def test_peak_memory_sees_a_large_allocation():
    with inference.peak_memory(torch.device("cpu")) as peak:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del block
    assert peak["method"]
    if peak["method"].startswith("VmHWM"):
        assert peak["bytes"] >= 60 * 2**20


@pytest.mark.parametrize("text, size", [("512x512", (512, 512)), ("4000x3000", (4000, 3000)), ("64X32", (64, 32))])
def test_parse_size_reads_width_by_height(text, size):
    assert inference.parse_size(text) == size


@pytest.mark.parametrize("text", ["512", "0x5", "axb", "5x"])
def test_parse_size_rejects_malformed_sizes(text):
    with pytest.raises(ValueError, match="WxH"):
        inference.parse_size(text)
