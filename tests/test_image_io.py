import struct
import warnings
import zlib

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from virnet.errors import VirnetError
from virnet.image_io import IMAGE_SUFFIXES, ImageData, list_images, read_image, write_image

RNG = np.random.default_rng(0)


def random_array(shape, dtype):
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def all_uint16_values():
    """A 256×256 image holding every 16-bit value once (0, 1, ..., 65535), shuffled."""
    return RNG.permutation(np.arange(65536, dtype=np.uint16)).reshape(256, 256)


def tiff(path, array, **layout):
    iio.imwrite(path, array, plugin="tifffile", **layout)
    return path


def png_rgb16_bytes(array):
    """A minimal 16-bit RGB PNG (Pillow cannot write one) built from H×W×3 uint16 samples."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = array.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def round_trip(tmp_path, source):
    """write(read(source)) next to it; returns the decoded arrays of source and copy."""
    copy = tmp_path / f"copy{source.suffix}"
    image = read_image(source)
    write_image(copy, image.pixels, like=image)
    return iio.imread(source), iio.imread(copy)


@pytest.mark.parametrize(
    "name, array",
    [
        ("rgb8.png", random_array((9, 13, 3), np.uint8)),
        ("gray8.png", random_array((9, 13), np.uint8)),
        ("rgba8.png", random_array((9, 13, 4), np.uint8)),
        ("gray16.png", all_uint16_values()),
        ("rgb8.tif", random_array((9, 13, 3), np.uint8)),
        ("gray16.tif", all_uint16_values()),
        ("rgb16.tiff", np.dstack([all_uint16_values()] * 3)[::-1].copy()),
        ("rgba16.tif", random_array((9, 13, 4), np.uint16)),
    ],
)
def test_integer_png_and_tiff_round_trips_are_exact(tmp_path, name, array):
    iio.imwrite(tmp_path / name, array)
    original, copy = round_trip(tmp_path, tmp_path / name)
    assert copy.dtype == original.dtype == array.dtype
    np.testing.assert_array_equal(copy, array)


def test_16_bit_extremes_survive_the_float_conversion(tmp_path):
    array = np.array([[0, 1, 2, 32767, 32768, 65534, 65535]], dtype=np.uint16)
    iio.imwrite(tmp_path / "edge.png", array)
    image = read_image(tmp_path / "edge.png")
    assert image.bit_depth == 16 and not image.is_float
    assert image.pixels[0, 0, 1].item() == pytest.approx(1 / 65535)
    write_image(tmp_path / "out.tif", image.pixels, like=image)
    np.testing.assert_array_equal(iio.imread(tmp_path / "out.tif"), array)


def test_grayscale_stays_one_channel_in_unit_scale(tmp_path):
    iio.imwrite(tmp_path / "gray.png", np.array([[0, 128, 255]], dtype=np.uint8))
    image = read_image(tmp_path / "gray.png")
    assert image.pixels.shape == (1, 1, 3)
    assert image.pixels.dtype == torch.float32
    assert image.pixels.flatten().tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    assert image.alpha is None and image.mode == "L" and image.bit_depth == 8


def test_rgba_alpha_is_kept_apart_and_reattached(tmp_path):
    array = random_array((6, 7, 4), np.uint8)
    iio.imwrite(tmp_path / "rgba.png", array)
    image = read_image(tmp_path / "rgba.png")
    assert image.pixels.shape == (3, 6, 7) and image.alpha.shape == (1, 6, 7)
    assert image.mode == "RGBA"
    np.testing.assert_array_equal(np.round(image.alpha[0].numpy() * 255), array[..., 3])
    write_image(tmp_path / "dark.png", torch.zeros(3, 6, 7), like=image)
    written = iio.imread(tmp_path / "dark.png")
    np.testing.assert_array_equal(written[..., 3], array[..., 3])
    assert not written[..., :3].any()


def test_alpha_follows_a_super_resolved_output_by_nearest_neighbour(tmp_path):
    array = random_array((4, 5, 4), np.uint8)
    iio.imwrite(tmp_path / "small.png", array)
    image = read_image(tmp_path / "small.png")
    write_image(tmp_path / "big.png", torch.zeros(3, 8, 10), like=image)
    alpha = iio.imread(tmp_path / "big.png")[..., 3]
    np.testing.assert_array_equal(alpha, array[..., 3].repeat(2, axis=0).repeat(2, axis=1))


def test_gray_alpha_png_reads_as_gray_plus_alpha(tmp_path):
    Image.new("LA", (5, 3), (40, 200)).save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    assert image.mode == "LA"
    assert image.pixels.shape == (1, 3, 5) and image.alpha.shape == (1, 3, 5)
    assert image.pixels.unique().tolist() == pytest.approx([40 / 255])
    assert image.alpha.unique().tolist() == pytest.approx([200 / 255])


def test_gray_alpha_tiff_round_trip_is_exact(tmp_path):
    array = random_array((5, 6, 2), np.uint16)
    tiff(tmp_path / "la.tif", array, photometric="minisblack", planarconfig="contig", extrasamples=("unassalpha",))
    image = read_image(tmp_path / "la.tif")
    assert image.mode == "LA" and image.bit_depth == 16
    write_image(tmp_path / "copy.tif", image.pixels, like=image)
    np.testing.assert_array_equal(iio.imread(tmp_path / "copy.tif"), array)


def test_planar_rgb_tiff_is_read_as_rgb(tmp_path):
    array = random_array((5, 6, 3), np.uint8)
    tiff(tmp_path / "planar.tif", np.moveaxis(array, -1, 0), photometric="rgb", planarconfig="separate")
    image = read_image(tmp_path / "planar.tif")
    np.testing.assert_array_equal(np.round(image.pixels.numpy() * 255).transpose(1, 2, 0), array)


def test_palette_images_become_rgb_and_transparency_becomes_alpha(tmp_path):
    palette = Image.new("P", (4, 3))
    palette.putpalette([255, 0, 0, 0, 0, 255] * 128)
    palette.putpixel((1, 1), 1)
    palette.save(tmp_path / "p.png")
    palette.save(tmp_path / "pt.png", transparency=1)
    opaque, transparent = read_image(tmp_path / "p.png"), read_image(tmp_path / "pt.png")
    assert opaque.mode == "RGB" and transparent.mode == "RGBA"
    assert opaque.pixels[:, 1, 1].tolist() == [0.0, 0.0, 1.0]
    assert transparent.alpha[0, 1, 1] == 0.0 and transparent.alpha[0, 0, 0] == 1.0


def test_bilevel_png_reads_as_one_channel(tmp_path):
    Image.new("1", (4, 2), 1).save(tmp_path / "bw.png")
    image = read_image(tmp_path / "bw.png")
    assert image.pixels.shape == (1, 2, 4) and image.pixels.min() == 1.0


def test_jpeg_and_bmp_are_read_as_8_bit(tmp_path):
    array = random_array((8, 10, 3), np.uint8)
    iio.imwrite(tmp_path / "photo.bmp", array)
    iio.imwrite(tmp_path / "photo.JPG", np.full((8, 10, 3), 100, np.uint8))
    Image.new("CMYK", (6, 4), (0, 0, 0, 0)).save(tmp_path / "print.jpeg")
    bmp, jpeg, cmyk = (read_image(tmp_path / name) for name in ("photo.bmp", "photo.JPG", "print.jpeg"))
    np.testing.assert_array_equal(np.round(bmp.pixels.numpy() * 255).transpose(1, 2, 0), array)
    assert jpeg.bit_depth == bmp.bit_depth == 8 and jpeg.pixels.shape == (3, 8, 10)
    assert (jpeg.pixels - 100 / 255).abs().max() < 3 / 255
    assert cmyk.mode == "RGB" and cmyk.pixels.min() > 0.99


def test_float_tiff_is_read_unclipped_and_written_back_as_clipped_float(tmp_path):
    array = np.array([[-0.25, 0.5, 1.5]], dtype=np.float32)
    tiff(tmp_path / "float.tif", array)
    image = read_image(tmp_path / "float.tif")
    assert image.is_float and image.bit_depth == 32
    assert image.pixels.flatten().tolist() == [-0.25, 0.5, 1.5]
    write_image(tmp_path / "out.tif", image.pixels, like=image)
    written = iio.imread(tmp_path / "out.tif")
    assert written.dtype == np.float32
    assert written.flatten().tolist() == [0.0, 0.5, 1.0]
    write_image(tmp_path / "out.png", image.pixels, like=image)
    assert iio.imread(tmp_path / "out.png").dtype == np.uint16


def test_output_values_are_clipped_then_rounded(tmp_path):
    pixels = torch.tensor([[[-0.5, 0.0, 0.499 / 255, 0.501 / 255, 1.0, 7.0]]])
    write_image(tmp_path / "out.png", pixels)
    assert iio.imread(tmp_path / "out.png").flatten().tolist() == [0, 0, 0, 1, 255, 255]


def test_bit_depth_argument_overrides_the_input_depth(tmp_path):
    iio.imwrite(tmp_path / "in.png", random_array((3, 4, 3), np.uint8))
    image = read_image(tmp_path / "in.png")
    write_image(tmp_path / "deep.tif", image.pixels, like=image, bit_depth=16)
    write_image(tmp_path / "float.tif", image.pixels, like=image, bit_depth=32)
    assert iio.imread(tmp_path / "deep.tif").dtype == np.uint16
    assert iio.imread(tmp_path / "float.tif").dtype == np.float32


def test_jpeg_output_is_8_bit_without_alpha(tmp_path):
    tiff(tmp_path / "in.tif", random_array((8, 8, 4), np.uint16), photometric="rgb", extrasamples=("unassalpha",))
    image = read_image(tmp_path / "in.tif")
    write_image(tmp_path / "out.jpg", image.pixels, like=image)
    written = iio.imread(tmp_path / "out.jpg")
    assert written.dtype == np.uint8 and written.shape == (8, 8, 3)


@pytest.mark.parametrize(
    "name, bit_depth, channels",
    [("out.jpg", 16, 3), ("out.bmp", 16, 1), ("out.png", 32, 1), ("out.png", 16, 3), ("out.tif", 12, 3)],
)
def test_bit_depths_a_format_cannot_hold_are_refused(tmp_path, name, bit_depth, channels):
    with pytest.raises(VirnetError, match="bit"):
        write_image(tmp_path / name, torch.zeros(channels, 2, 2), bit_depth=bit_depth)
    assert list(tmp_path.iterdir()) == []


def test_16_bit_colour_png_is_refused_instead_of_truncated(tmp_path):
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_rgb16_bytes(random_array((3, 4, 3), np.uint16)))
    with pytest.raises(VirnetError, match="16-bit colour PNG"):
        read_image(path)


def corrupt_files(tmp_path):
    """name -> path of a file that is not a readable image (each made on the spot)."""
    iio.imwrite(tmp_path / "valid.png", random_array((32, 32, 3), np.uint8))
    data = (tmp_path / "valid.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("this is not an image\n")
    (tmp_path / "zero_bytes.jpg").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile warns that a 0×0 TIFF is nonconformant
        tiff(tmp_path / "empty.tif", np.zeros((0, 0), np.uint8))
    tiff(tmp_path / "nan.tif", np.array([[0.5, np.nan]], dtype=np.float32))
    tiff(tmp_path / "inf.tif", np.array([[0.5, np.inf]], dtype=np.float32))
    tiff(tmp_path / "five.tif", np.zeros((4, 4, 5), np.uint8), photometric="minisblack", planarconfig="contig")
    tiff(tmp_path / "cmyk.tif", np.zeros((4, 4, 4), np.uint8), photometric="separated")
    tiff(tmp_path / "int32.tif", np.zeros((4, 4), np.int32))
    return {
        "truncated.png": "truncated or corrupt",
        "text.png": "not a valid image",
        "zero_bytes.jpg": "not a valid image",
        "empty.tif": "empty",
        "nan.tif": "NaN",
        "inf.tif": "infinite",
        "five.tif": "channels",
        "cmyk.tif": "colour space",
        "int32.tif": "sample type",
    }


def test_each_bad_file_raises_a_one_line_error_naming_it(tmp_path):
    for name, reason in corrupt_files(tmp_path).items():
        with pytest.raises(VirnetError, match=reason) as error:
            read_image(tmp_path / name)
        message = str(error.value)
        assert str(tmp_path / name) in message and "\n" not in message, message


@pytest.mark.parametrize(
    "name, reason",
    [("missing.png", "no such file"), ("folder.png", "folder"), ("notes.txt", "unsupported file type")],
)
def test_paths_that_are_not_image_files_are_refused(tmp_path, name, reason):
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VirnetError, match=reason):
        read_image(tmp_path / name)


def test_existing_output_is_not_overwritten_unless_asked(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(VirnetError, match="overwrite"):
        write_image(target, torch.zeros(1, 2, 2))
    assert target.read_bytes() == b"precious"
    write_image(target, torch.ones(1, 2, 2), overwrite=True)
    assert iio.imread(target).tolist() == [[255, 255], [255, 255]]


@pytest.mark.parametrize("existing", [False, True])
def test_failed_encoding_leaves_no_partial_file(tmp_path, monkeypatch, existing):
    target = tmp_path / "out.png"
    if existing:
        target.write_bytes(b"old result")

    def half_written(path, *args, **kwargs):
        path.write_bytes(b"\x89PNG half")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(iio, "imwrite", half_written)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image(target, torch.zeros(3, 4, 4), overwrite=True)
    assert [path.name for path in tmp_path.iterdir()] == (["out.png"] if existing else [])
    if existing:
        assert target.read_bytes() == b"old result"


def test_os_errors_while_writing_become_virnet_errors(tmp_path, monkeypatch):
    def disk_full(path, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(iio, "imwrite", disk_full)
    with pytest.raises(VirnetError, match="No space left"):
        write_image(tmp_path / "out.tif", torch.zeros(1, 2, 2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, reason",
    [("out.gif", "unsupported file type"), ("out", "no suffix"), ("missing/out.png", "does not exist")],
)
def test_unwritable_output_paths_are_refused(tmp_path, name, reason):
    with pytest.raises(VirnetError, match=reason):
        write_image(tmp_path / name, torch.zeros(3, 2, 2))


def test_non_finite_output_pixels_are_refused(tmp_path):
    with pytest.raises(VirnetError, match="NaN"):
        write_image(tmp_path / "out.png", torch.full((1, 2, 2), float("nan")))
    assert list(tmp_path.iterdir()) == []


def test_image_data_rejects_inconsistent_fields():
    with pytest.raises(ValueError):
        ImageData(pixels=torch.zeros(2, 4, 4), alpha=None, bit_depth=8, is_float=False)
    with pytest.raises(ValueError):
        ImageData(pixels=torch.zeros(3, 4, 4), alpha=torch.zeros(1, 2, 2), bit_depth=8, is_float=False)
    with pytest.raises(ValueError):
        ImageData(pixels=torch.zeros(3, 4, 4), alpha=None, bit_depth=16, is_float=True)


def test_list_images_expands_folders_recursively_and_sorted(tmp_path):
    for name in ["b.png", "a.JPG", "sub/c.tiff", "sub/deeper/d.bmp", "notes.txt", ".hidden.png", ".cache/e.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    single = tmp_path / "sub" / "c.tiff"
    found = list_images([tmp_path, single])
    relative = [path.relative_to(tmp_path).as_posix() for path in found]
    assert relative == ["a.JPG", "b.png", "sub/c.tiff", "sub/deeper/d.bmp"]
    assert list_images([single]) == [single]


def test_image_suffixes_cover_the_supported_formats():
    assert IMAGE_SUFFIXES == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def test_list_images_rejects_bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "only_text").mkdir()
    (tmp_path / "only_text" / "readme.txt").write_text("no images")
    (tmp_path / "clip.gif").write_bytes(b"")
    for inputs, reason in [
        ([], "no input"),
        ([tmp_path / "missing"], "no such file or folder"),
        ([tmp_path / "empty"], "no images"),
        ([tmp_path / "only_text"], "no images"),
        ([tmp_path / "clip.gif"], "unsupported file type"),
    ]:
        with pytest.raises(VirnetError, match=reason):
            list_images(inputs)


@pytest.mark.gpu
def test_writes_pixels_that_live_on_the_gpu(tmp_path):
    iio.imwrite(tmp_path / "rgba.png", random_array((4, 4, 4), np.uint8))
    image = read_image(tmp_path / "rgba.png")
    write_image(tmp_path / "out.png", image.pixels.cuda(), like=image)
    np.testing.assert_array_equal(iio.imread(tmp_path / "out.png"), iio.imread(tmp_path / "rgba.png"))
