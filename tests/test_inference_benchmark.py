"""benchmarks/inference.py: speed against the convolution floor, memory, the large restore and
training steps, smoke-run on tiny checkpoints."""

import json
import re
import subprocess
import sys

import pytest
import torch

from benchmarks import inference
from tests.checkpoints import write_tiny_checkpoint
from virnet import models


def test_runs_on_tiny_checkpoints_and_reports_every_section(tmp_path, capsys):
    denoiser = write_tiny_checkpoint(tmp_path, "denoise")
    upscaler = write_tiny_checkpoint(tmp_path, "sr", 2)
    report = tmp_path / "report.json"
    argv = ["--size", "64x64", "--repeats", "1", "--model", str(denoiser), "--model", str(upscaler), "--paper", "none",
            "--large", "96x80", "--tile", "64", "--train", "none", "--nchw", "--json", str(report)]
    assert inference.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"floor: 3×3 conv 64→64 channels_last: fp32 [\d.]+ GFLOP/s, bf16 [\d.]+ GFLOP/s", out)
    rows = re.findall(r"fp32 ([\d.]+) s/image = (\d+) % of the floor \(([\d.]+) GFLOP/s\); "
                      r"from a fresh heap ([\d.]+) s = \d+ %, peak (-?[\d.]+) MiB", out)
    assert len(rows) == 2 and all(float(kept) > 0 and float(rate) > 0 and float(fresh) > 0
                                  for kept, _, rate, fresh, _ in rows)
    assert "input 64x64" in out and "input 32x32" in out and "posterior NCHW" in out
    result = json.loads(report.read_text())
    large = result["large"]
    assert large["label"] == str(denoiser) and large["input_size"] == [80, 96]
    assert large["tiles"] == 2 * 2 and large["ratio_to_tile_sum"] > 0
    assert re.search(r"large restore .* = [\d.]+ × \(4 × [\d.]+ s one tile\)", out)
    assert [line.startswith("target ") for line in result["targets"]] == [True] * 3
    for row in result["models"]:
        assert row["fp32"]["floor_fraction"] == pytest.approx(
            row["gflops"] / row["fp32"]["conv_gflops"] / row["fp32"]["seconds"])
        assert row["fp32"]["fresh_heap_floor_fraction"] == pytest.approx(
            row["gflops"] / row["fp32"]["conv_gflops"] / row["fp32"]["fresh_heap_seconds"])


def test_training_rows_time_both_layouts(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_step_seconds(config, device, channels_last, steps):
        calls.append((config.name, channels_last, steps))
        return (0.5 if channels_last else 1.0), [1.0]

    monkeypatch.setattr(inference.train_speed, "step_seconds", fake_step_seconds)
    row = inference.measure_training("sr-x2-cpu", torch.device("cpu"), 2)
    assert row["channels_last_speedup"] == 2.0 and row["batch"] == 8
    assert sorted(set(calls)) == [("sr-x2-cpu", False, 2), ("sr-x2-cpu", True, 2)] and len(calls) == 4
    assert inference.training_presets(None, torch.device("cpu")) == [
        "denoise-niid-cpu", "denoise-real-cpu", "sr-x2-cpu", "sr-x3-cpu", "sr-x4-cpu"]
    assert inference.training_presets(["none"], torch.device("cpu")) == []


def test_targets_are_judged_against_the_issue_figures():
    report = {
        "models": [{"label": "denoise", "random_init": False, "fp32": {"floor_fraction": 0.6}},
                   {"label": "paper denoise (random init)", "random_init": True, "fp32": {"floor_fraction": 0.7}}],
        "large": {"label": "denoise", "ratio_to_tile_sum": 1.1, "peak_bytes": 3 * 2**30},
    }
    lines = inference.check_targets(report)
    assert [line.endswith("met") for line in lines] == [True, False, True, False]
    assert "0.70 ≥ 0.75" in lines[1] and "3.00 ≤ 2.00" in lines[3]


def test_says_when_no_default_weights_are_shipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "none")
    argv = ["--size", "64x64", "--repeats", "1", "--paper", "none", "--large", "none", "--train", "none"]
    assert inference.main(argv) == 0
    assert "no default weights are shipped yet" in capsys.readouterr().out


def test_paper_models_are_listed_without_being_built(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_DIR", tmp_path / "none")
    labels = [label for label, _ in inference.model_candidates(None, "both", torch.device("cpu"))]
    assert labels == ["paper denoise (random init)", "paper sr-x4 (random init)"]
    assert [label for label, _ in inference.model_candidates(None, "sr", torch.device("cpu"))] == labels[1:]


PEAK_PROBE = """
import json, torch
from benchmarks import inference
with inference.peak_memory(torch.device("cpu")) as peak:
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    del block
print(json.dumps(peak))
"""


def test_peak_memory_sees_a_large_allocation():
    # A fresh process: in this one, earlier tests leave freed memory resident that the
    # allocation may reuse without raising the resident set.
    done = subprocess.run([sys.executable, "-c", PEAK_PROBE], capture_output=True, text=True, check=True, timeout=120)
    peak = json.loads(done.stdout.strip().splitlines()[-1])
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
