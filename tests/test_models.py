"""virnet/models.py: the embedded default models shipped in virnet/weights/."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from cli import main
from tests.helpers import write_random_photos
from training.images import read_image
from virnet import models

WEIGHTS_BUDGET_BYTES = 40 * 10**6  # issue 12: the package's weights, all of them, at most 40 MB
SHIPPED = ["denoise", "sr-x2", "sr-x3", "sr-x4"]  # issue 12: the four embedded defaults


def test_the_four_defaults_ship_in_the_package():
    assert models.embedded_models() == SHIPPED


def test_the_shipped_weights_fit_the_package_budget():
    total = sum(path.stat().st_size for path in models.EMBEDDED_DIR.iterdir() if path.is_file())
    assert 0 < total <= WEIGHTS_BUDGET_BYTES


def test_each_embedded_default_is_the_model_its_name_says():
    for name in models.embedded_models():
        cfg = models.load_model(name).model_config
        assert models.default_model_name(cfg.task, cfg.scale) == name


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_restore_task_sr_works_out_of_the_box_at_each_scale(scale, tmp_path):
    photo, out = tmp_path / "small.png", tmp_path / "big.png"
    iio.imwrite(photo, np.random.default_rng(0).integers(0, 256, (20, 18, 3), dtype=np.uint8))
    assert main(["restore", str(photo), "-o", str(out), "--task", "sr", "--scale", str(scale), "--device", "cpu"]) == 0
    assert read_image(out).shape == (3, 20 * scale, 18 * scale)


def test_a_training_checkpoint_loads_as_the_guide_it_holds(tmp_path):
    photos = write_random_photos(tmp_path / "photos", count=3, side=40)
    tiny = ["guide.snet_features=8", "guide.snet_depth=3", "guide.rnet_widths=[8, 16]", "guide.rnet_blocks=1",
            "data.patch_size=32", "data.batch_size=2", "data.workers=0", "data.val_images=1", "run.checkpoint_every=2"]
    run = tmp_path / "run"
    assert main(["train", "--config", "denoise-niid-cpu", "--data", str(photos), "--out", str(run), "--steps", "2",
                 "--no-progress", *tiny]) == 0
    from_checkpoint = models.load_model(run / "checkpoints" / "ckpt_00000002.safetensors")
    exported = models.load_model(run / "model.safetensors")
    assert from_checkpoint.guide_config == exported.guide_config
    assert from_checkpoint.model_config == exported.model_config
    exported_state = exported.state_dict()
    assert all(torch.equal(tensor, exported_state[name]) for name, tensor in from_checkpoint.state_dict().items())
