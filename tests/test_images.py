"""Training images on disk go through the one image codec that reads the user's images."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from tests.test_image_io import png_rgb16_bytes, random_array
from training.data import SyntheticDegradation
from training.degradations import DegradationSpec
from training.images import read_image, to_unit
from virnet import image_io


@pytest.mark.parametrize(
    "name, array",
    [("rgb8.png", random_array((20, 24, 3), np.uint8)), ("rgb16.tif", random_array((20, 24, 3), np.uint16))],
)
def test_training_images_decode_to_the_pixels_the_user_reader_gives(tmp_path, name, array):
    path = tmp_path / name
    iio.imwrite(path, array)
    stored = read_image(path)
    assert stored.dtype == (torch.uint8 if array.dtype == np.uint8 else torch.uint16) and stored.shape == (3, 20, 24)
    assert torch.equal(to_unit(stored), image_io.read_image(path).pixels)


def test_a_gray_image_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "gray.png"
    iio.imwrite(path, random_array((20, 24), np.uint8))
    stored = read_image(path)
    assert stored.shape == (3, 20, 24) and torch.equal(stored[0], stored[2])


def test_a_16_bit_colour_png_is_refused_not_read_at_8_bits(tmp_path):
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_rgb16_bytes(random_array((40, 40, 3), np.uint16)))
    with pytest.raises(ValueError, match="16-bit colour PNG"):
        read_image(path)
    iio.imwrite(tmp_path / "ok.png", random_array((40, 40, 3), np.uint8))
    with pytest.warns(UserWarning, match="1 unreadable"):
        dataset = SyntheticDegradation(tmp_path, DegradationSpec(task="denoise", patch_size=32))
    assert [p.name for p in dataset.skipped] == ["rgb16.png"]
