import imageio.v3 as iio
import numpy as np
import pytest
import torch

from benchmarks.quick_images import load_image_folder, quick_images


def test_quick_images_are_small_rgb_tensors_in_unit_range():
    images = quick_images(3, size=32)
    assert [name for name, _ in images] == ["astronaut", "chelsea", "coffee"]
    for _, image in images:
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert torch.equal(quick_images(1, size=32)[0][1], images[0][1])


def test_quick_images_rejects_bad_arguments():
    with pytest.raises(ValueError, match="quick images"):
        quick_images(99)
    with pytest.raises(ValueError, match="size"):
        quick_images(1, size=0)


def test_load_image_folder_reads_sorted_rgb_in_unit_range(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    iio.imwrite(tmp_path / "b_rgb.png", rgb)
    iio.imwrite(tmp_path / "a_gray16.png", np.full((4, 5), 65535, dtype=np.uint16))
    iio.imwrite(tmp_path / "c_rgba.png", np.dstack([rgb, np.full((4, 5), 255, np.uint8)]))
    (tmp_path / "readme.txt").write_text("not an image")

    images = load_image_folder(tmp_path)
    assert [name for name, _ in images] == ["a_gray16", "b_rgb", "c_rgba"]
    assert torch.equal(images[0][1], torch.ones(3, 4, 5))
    expected = torch.from_numpy(rgb.transpose(2, 0, 1) / 255.0).float()
    assert torch.allclose(images[1][1], expected) and torch.allclose(images[2][1], expected)
    assert [name for name, _ in load_image_folder(tmp_path, limit=1)] == ["a_gray16"]


def test_load_image_folder_errors_clearly(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        load_image_folder(tmp_path / "missing")
    iio.imwrite(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="limit"):
        load_image_folder(tmp_path, limit=0)
