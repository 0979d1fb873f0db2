"""Presets load as typed configs; every value can be overridden; the resolved file round-trips."""

import pytest

from generative.config import ModelConfig
from training.config import load_config, parse_override, preset_names, save_config

TASKS = ["denoise-niid", "denoise-real", "sr-x2", "sr-x3", "sr-x4"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("size", ["paper", "cpu"])
def test_every_task_has_a_paper_and_a_cpu_preset(task, size):
    config = load_config(f"{task}-{size}")
    assert config.name == f"{task}-{size}"
    assert isinstance(config.model, ModelConfig)
    if task.startswith("sr"):
        assert config.model.scale == int(task[-1]) and config.model.downsampler == "bicubic"
        assert config.data.patch_size % config.model.scale == 0


def test_paper_presets_carry_the_paper_hyper_parameters():
    denoise = load_config("denoise-niid-paper")
    assert (denoise.model.eps0_sq, denoise.model.window, denoise.optim.lr) == (1e-6, 7, 1e-4)
    assert (denoise.data.batch_size, denoise.data.patch_size) == (16, 128)
    assert denoise.guide.rnet_widths == (96, 192, 288)
    assert denoise.optim.clip == {"rnet": 1e3, "snet": 1e2}
    sr = load_config("sr-x4-paper")
    assert (sr.model.eps0_sq, sr.model.kappa0, sr.model.r0_sq, sr.optim.lr) == (1e-5, 50.0, 1e-4, 2e-4)
    assert sr.data.patch_size == 192 and sr.guide.conditioning == "both"
    assert load_config("denoise-real-paper").model.sigma_channels == 3


def test_overrides_are_typed_toml_literals():
    config = load_config("denoise-niid-cpu", ["optim.lr=2e-4", "guide.rnet_widths=[8, 16]", "data.kind=paired"])
    assert config.optim.lr == 2e-4
    assert config.guide.rnet_widths == (8, 16)
    assert config.data.kind == "paired"
    assert parse_override("run.seed=3") == ("run", "seed", 3)


@pytest.mark.parametrize(
    "override, message",
    [("optim.learning_rate=1", "unknown key"), ("nosuch.key=1", "unknown config section"), ("lr=1", "section.key=value")],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ValueError, match=message):
        load_config("denoise-niid-cpu", [override])


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ValueError, match="available: .*sr-x4-cpu"):
        load_config("denoise-everything")


def test_resolved_config_round_trips(tmp_path):
    config = load_config("sr-x3-cpu", ["optim.steps=7"])
    save_config(config, tmp_path / "config.toml")
    assert load_config(str(tmp_path / "config.toml")) == config
    assert "sr-x3-cpu" in preset_names()


@pytest.mark.parametrize("task, scale", [("denoise", None), ("sr", 2), ("sr", 3), ("sr", 4)])
def test_a_config_naming_only_the_task_and_scale_gets_that_tasks_defaults(tmp_path, task, scale):
    """ε0², p, the downsampler and the training noise follow the task (DESIGN.md, Sec. 5)."""
    path = tmp_path / "custom.toml"
    path.write_text(f'[model]\ntask = "{task}"\n' + (f"scale = {scale}\n" if scale else ""))
    config = load_config(str(path))
    model, data = config.model, config.data
    if task == "sr":
        assert (model.scale, model.eps0_sq, model.window, model.downsampler) == (scale, 1e-5, 11, "bicubic")
        assert (data.noise, data.min_sigma, data.max_sigma) == ("iid", pytest.approx(0.5 / 255), pytest.approx(15 / 255))
    else:
        assert (model.scale, model.eps0_sq, model.window) == (1, 1e-6, 7)
        assert (data.noise, data.min_sigma, data.max_sigma) == ("niid", 0.0, pytest.approx(75 / 255))
    assert data.kernel_patch_size == data.patch_size, "KNet reads the patch itself unless told otherwise"
    save_config(config, tmp_path / "resolved.toml")
    assert load_config(str(tmp_path / "resolved.toml")) == config


def test_explicit_values_win_over_the_task_defaults_and_sr_needs_a_scale(tmp_path):
    path = tmp_path / "custom.toml"
    path.write_text('[model]\ntask = "sr"\nscale = 4\nwindow = 9\n[data]\nmax_sigma = 0.02\n')
    config = load_config(str(path))
    assert (config.model.window, config.model.eps0_sq, config.data.max_sigma) == (9, 1e-5, 0.02)
    path.write_text('[model]\ntask = "sr"\n')
    with pytest.raises(ValueError, match="needs a scale"):
        load_config(str(path))
