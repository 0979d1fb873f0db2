"""Fine-tuning (`virnet train --init`): a run starts from given weights and their architecture,
its RNet optionally grown deeper (`--grow-rnet-blocks`)."""

import hashlib
import json
import shutil

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from cli import main
from guides.guide import VIRNetGuide
from training.checkpoint import load_weights, save_weights
from training.config import load_config
from training.finetune import initial_weights
from training.loop import train

TINY = [
    "guide.snet_features=8", "guide.snet_depth=3", "guide.knet_features=8", "guide.knet_blocks=1",
    "guide.rnet_widths=[8, 16]", "guide.rnet_blocks=1", "data.patch_size=32", "data.batch_size=2",
    "data.workers=0", "data.val_images=0", "optim.warmup_steps=1", "run.log_every=1",
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):
        iio.imwrite(folder / f"img{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory):
    """Weights of a 3-step run with RNet widths (8, 16, 16): a different architecture from TINY's."""
    out = tmp_path_factory.mktemp("first")
    config = load_config("denoise-niid-cpu", [*TINY, "guide.rnet_widths=[8, 16, 16]", "optim.steps=3"])
    return train(config, photos, out, progress=False).weights


def test_a_run_starts_from_the_weights_and_takes_their_architecture(photos, trained, tmp_path):
    config = load_config("denoise-niid-cpu", [*TINY, "optim.steps=1", "optim.lr=1e-12", "optim.lr_min=1e-13"])
    result = train(config, photos, tmp_path, progress=False, init=trained)
    start, _ = load_weights(trained)
    end, metadata = load_weights(result.weights)
    assert metadata["guide_config"]["rnet_widths"] == [8, 16, 16]
    assert metadata["training"]["init"] == str(trained)
    assert metadata["training"]["init_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    assert set(end) == set(start)
    assert max((end[k] - start[k]).abs().max().item() for k in start) < 1e-6  # one step at lr 1e-12


def test_a_resumed_run_names_the_weights_it_started_from_even_after_their_file_was_replaced(photos, trained, tmp_path):
    init = tmp_path / "init.safetensors"
    shutil.copy(trained, init)
    shutil.copy(trained.with_suffix(".json"), init.with_suffix(".json"))
    original = hashlib.sha256(init.read_bytes()).hexdigest()
    overrides = [*TINY, "guide.rnet_widths=[8, 16, 16]", "run.checkpoint_every=1"]
    out = tmp_path / "run"
    train(load_config("denoise-niid-cpu", [*overrides, "optim.steps=1"]), photos, out, progress=False, init=init)
    state, metadata = load_weights(init)
    save_weights(init, {k: v + 1 for k, v in state.items()}, metadata)  # other weights, same architecture
    assert hashlib.sha256(init.read_bytes()).hexdigest() != original
    train(load_config("denoise-niid-cpu", [*overrides, "optim.steps=2"]), photos, out, progress=False, init=init, resume=True)
    training = json.loads((out / "model.json").read_text())["training"]
    assert (training["init"], training["init_sha256"], training["step"]) == (str(init), original, 2)


def test_detach_degradation_stays_the_configs_choice(trained):
    config = load_config("denoise-niid-cpu", [*TINY, "guide.detach_degradation=false"])
    adopted, _ = initial_weights(config, trained)
    assert adopted.guide.detach_degradation is False and adopted.guide.rnet_widths == (8, 16, 16)


def test_weights_of_another_task_are_refused(trained):
    config = load_config("sr-x4-cpu", TINY)
    with pytest.raises(ValueError, match="task = 'denoise', but the config trains task = 'sr'"):
        initial_weights(config, trained)


def test_cli_init_errors_are_one_line_and_start_no_run(photos, trained, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--config", "sr-x4-cpu", "--data", str(photos), "--out", str(out), "--no-progress", *TINY]
    assert main([*common, "--init", str(tmp_path / "missing.safetensors")]) == 2
    assert main([*common, "--init", str(trained)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert [e.startswith("virnet: error: ") for e in errors] == [True, True]
    assert "no such model file" in errors[0] and "but the config trains task = 'sr'" in errors[1]
    assert not out.exists()


def test_cli_fine_tunes_an_embedded_model(photos, tmp_path, capsys):
    out = tmp_path / "run"
    command = ["train", "--config", "denoise-niid-cpu", "--data", str(photos), "--out", str(out), "--no-progress",
               "--init", "denoise", "--steps", "1", "data.patch_size=32", "data.batch_size=2", "data.workers=0",
               "data.val_images=0"]
    assert main(command) == 0
    metadata = json.loads((out / "model.json").read_text())
    assert metadata["training"]["init"].endswith("denoise.safetensors")


def test_a_grown_rnet_computes_what_the_weights_did_and_can_learn(trained):
    config = load_config("denoise-niid-cpu", TINY)
    original_config, original_state = initial_weights(config, trained)
    grown_config, grown_state = initial_weights(config, trained, rnet_blocks=3)
    assert (original_config.guide.rnet_blocks, grown_config.guide.rnet_blocks) == (1, 3)
    original, grown = (VIRNetGuide(c.model, c.guide) for c in (original_config, grown_config))
    original.load_state_dict(original_state)
    grown.load_state_dict(grown_state)
    x, cond = torch.rand(2, 3, 16, 16), torch.rand(2, grown.rnet.cond_channels, 16, 16)
    mu = grown.rnet(x, cond)
    assert torch.equal(mu, original.rnet(x, cond)), "the appended blocks start as the identity"
    mu.square().sum().backward()
    new_block = grown.rnet.down_path[0].body[2]
    assert new_block.conv2.weight.grad.abs().max() > 0, "the new blocks get a gradient from the first step"


def test_rnet_blocks_can_be_added_not_removed(trained):
    config = load_config("denoise-niid-cpu", TINY)
    with pytest.raises(ValueError, match="already has 1 RNet blocks per stage; blocks can be added, not removed"):
        initial_weights(config, trained, rnet_blocks=0)


def test_cli_grows_rnet_only_with_init(photos, trained, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--config", "denoise-niid-cpu", "--data", str(photos), "--out", str(out), "--no-progress",
              "--steps", "1", *TINY]
    assert main([*common, "--grow-rnet-blocks", "2"]) == 2
    assert capsys.readouterr().err.strip() == "virnet: error: --grow-rnet-blocks needs --init: the weights whose RNet it grows"
    assert not out.exists()
    assert main([*common, "--init", str(trained), "--grow-rnet-blocks", "2"]) == 0
    assert json.loads((out / "model.json").read_text())["guide_config"]["rnet_blocks"] == 2
