"""benchmarks/gpu_check.py: ready for a GPU, and harmless without one."""

import json

import torch

from benchmarks import gpu_check


def test_without_cuda_it_says_so_skips_every_stage_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "check.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    assert "no CUDA device" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["cuda"] is False
    assert set(report["stages"]) == set(gpu_check.STAGES)
    assert all(value.startswith("skipped") for value in report["stages"].values())


def test_the_training_stage_checks_a_finite_falling_loss_and_records_the_speed(tmp_path, capsys):
    out = tmp_path / "check.json"
    argv = ["--out", str(out), "--device", "cpu", "--stages", "training", "--presets", "denoise-niid-cpu", "--steps", "30",
            "--set", "data.workers=0", "data.batch_size=2", "data.patch_size=32", "guide.snet_features=8", "guide.rnet_widths=[8, 16]"]
    assert gpu_check.main(argv) == 0, capsys.readouterr().out
    runs = json.loads(out.read_text())["stages"]["training"]
    assert [run["run"] for run in runs] == ["denoise-niid-cpu fp32", "denoise-niid-cpu bf16"]
    for run in runs:
        assert run["finite"] and run["falling"] and run["passed"]
        assert run["steps"] == 30 and run["steps_per_second"] > 0
