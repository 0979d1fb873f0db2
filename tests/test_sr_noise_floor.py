"""The SR noise-floor measurement runs end to end and counts the near-noiseless examples."""

from benchmarks import sr_noise_floor
from tests.checkpoints import write_tiny_checkpoint
from tests.helpers import write_random_photos


def test_only_the_unfloored_noise_range_has_examples_below_the_floor(tmp_path, capsys):
    photos = write_random_photos(tmp_path / "photos", 3, 96)
    model = write_tiny_checkpoint(tmp_path, "sr", 4)
    assert sr_noise_floor.main(["--data", str(photos), "--model", str(model), "--examples", "64"]) == 0
    without, with_floor = capsys.readouterr().out.splitlines()
    assert "U[0.0, 15]/255" in without and "0 of 64 examples" not in without
    assert "U[0.5, 15]/255" in with_floor and "0 of 64 examples below 0.5/255, their KL_σ² none" in with_floor
