"""The SR noise-floor measurement runs end to end and counts the near-noiseless examples."""

import imageio.v3 as iio
import numpy as np

from benchmarks import sr_noise_floor
from tests.checkpoints import write_tiny_checkpoint


def test_only_the_unfloored_noise_range_has_examples_below_the_floor(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        iio.imwrite(photos / f"p{i}.png", rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    model = write_tiny_checkpoint(tmp_path, "sr", 4)
    assert sr_noise_floor.main(["--data", str(photos), "--model", str(model), "--examples", "64"]) == 0
    without, with_floor = capsys.readouterr().out.splitlines()
    assert "U[0.0, 15]/255" in without and "0 of 64 examples" not in without
    assert "U[0.5, 15]/255" in with_floor and "0 of 64 examples below 0.5/255, their KL_σ² none" in with_floor
