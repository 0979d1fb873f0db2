import pytest
import torch
import torch.nn.functional as F

from virnet.tiling import axis_tiles, peak_bytes_per_pixel, tile_size_for_budget, tiled_apply


def box_blur(x):
    """3×3 mean filter: a local operation with a 1-pixel receptive-field radius."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def recording(fn, calls):
    """`fn`, also appending the shape of every tile it is given to `calls`."""

    def wrapped(x):
        calls.append(tuple(x.shape))
        return fn(x)

    return wrapped


@pytest.fixture
def image():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 301, 517, generator=generator)


def test_identity_is_reproduced_from_many_bounded_tiles(image):
    calls = []
    out = tiled_apply(recording(lambda x: x, calls), image, tile=128, overlap=16)
    assert out.shape == image.shape
    assert (out - image).abs().max() < 1e-5
    assert len(calls) == 3 * 5
    assert all(shape[-2] <= 128 and shape[-1] <= 128 for shape in calls)


def test_local_filter_matches_untiled_result(image):
    out = tiled_apply(box_blur, image, tile=128, overlap=16)
    assert (out - box_blur(image)).abs().max() < 1 / 255


def test_tiles_are_padded_to_the_multiple_and_cropped_back():
    image = torch.rand(1, 1, 45, 77, generator=torch.Generator().manual_seed(1))
    calls = []
    out = tiled_apply(recording(box_blur, calls), image, tile=32, overlap=8, multiple=8)
    assert out.shape == image.shape
    assert all(shape[-2] % 8 == 0 and shape[-1] % 8 == 0 for shape in calls)
    assert (out - box_blur(image)).abs().max() < 1 / 255


@pytest.mark.parametrize("scale", [2, 4])
def test_nearest_upsampling_gives_scaled_shape_and_values(image, scale):
    def upsample(x):
        return F.interpolate(x, scale_factor=scale, mode="nearest")

    out = tiled_apply(upsample, image, tile=96, overlap=16, multiple=4)
    assert out.shape == (2, 3, 301 * scale, 517 * scale)
    assert (out - upsample(image)).abs().max() < 1e-5


def test_dict_outputs_each_keep_their_channels_and_scale(image):
    def restore(x):
        return {
            "mean": F.interpolate(x, scale_factor=2, mode="nearest"),
            "sigma": x.mean(dim=1, keepdim=True),
        }

    out = tiled_apply(restore, image, tile=128, overlap=16)
    reference = restore(image)
    assert list(out) == ["mean", "sigma"]
    assert out["mean"].shape == (2, 3, 602, 1034)
    assert out["sigma"].shape == (2, 1, 301, 517)
    for key in out:
        assert (out[key] - reference[key]).abs().max() < 1e-5


def test_blending_hides_seams_between_disagreeing_tiles():
    """Each tile returns a different constant (0/1 checkerboard): the output must ramp smoothly."""
    calls = []

    def constant_per_tile(x):
        calls.append(None)
        return torch.full_like(x, float(len(calls) % 2))

    out = tiled_apply(constant_per_tile, torch.zeros(1, 1, 200, 200), tile=64, overlap=16)
    steps = torch.cat([out.diff(dim=-1).abs().flatten(), out.diff(dim=-2).abs().flatten()])
    assert out.min() < 0.01 and out.max() > 0.99
    assert steps.max() < 0.15


def test_image_that_fits_one_tile_goes_through_whole():
    image = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    calls = []
    out = tiled_apply(recording(box_blur, calls), image, tile=64, overlap=16, multiple=8)
    assert calls == [(1, 3, 40, 56)]
    assert torch.equal(out, box_blur(image))


def test_single_tile_output_may_have_any_shape():
    """Nothing is blended for one tile, so e.g. a per-image global estimate is returned as is."""
    image = torch.rand(2, 3, 40, 56)
    out = tiled_apply(lambda x: {"kernel": x.mean(dim=(2, 3))}, image, tile=64, overlap=16)
    assert torch.equal(out["kernel"], image.mean(dim=(2, 3)))


def test_runs_without_building_an_autograd_graph():
    weight = torch.ones(1, 1, 3, 3, requires_grad=True)
    out = tiled_apply(lambda x: F.conv2d(x, weight, padding=1), torch.rand(1, 1, 100, 100), tile=32, overlap=8)
    assert not out.requires_grad


@pytest.mark.parametrize(
    "tile, overlap, multiple",
    [(16, 32, 1), (32, 32, 1), (32, -1, 1), (36, 8, 8), (32, 8, 0)],
)
def test_invalid_tiling_is_rejected(tile, overlap, multiple):
    with pytest.raises(ValueError):
        tiled_apply(lambda x: x, torch.rand(1, 1, 100, 100), tile=tile, overlap=overlap, multiple=multiple)


def test_outputs_not_an_integer_multiple_of_the_tile_are_rejected():
    def halve(x):
        return x[..., ::2, ::2]

    with pytest.raises(ValueError, match="shape"):
        tiled_apply(halve, torch.rand(1, 1, 100, 100), tile=32, overlap=8)


def test_tile_size_for_budget_fits_the_budget_in_multiples():
    side = tile_size_for_budget(budget_bytes=300 * 300 * 1000, bytes_per_pixel=1000, multiple=8)
    assert side == 296
    assert side * side * 1000 <= 300 * 300 * 1000
    assert tile_size_for_budget(4 * 2**30, 2**14, multiple=16) % 16 == 0
    assert tile_size_for_budget(4 * 2**30, 2**14) > tile_size_for_budget(2**30, 2**14)


def test_tile_size_for_budget_never_goes_below_the_minimum():
    assert tile_size_for_budget(budget_bytes=10, bytes_per_pixel=1000, multiple=8, minimum=60) == 64


@pytest.mark.parametrize("budget, cost", [(0, 1.0), (100, 0.0), (-5, 1.0)])
def test_tile_size_for_budget_rejects_non_positive_inputs(budget, cost):
    with pytest.raises(ValueError):
        tile_size_for_budget(budget, cost)


@pytest.mark.gpu
def test_outputs_stay_on_the_input_device():
    image = torch.rand(1, 3, 150, 170, device="cuda")
    out = tiled_apply(box_blur, image, tile=64, overlap=16)
    assert out.device == image.device
    assert (out - box_blur(image)).abs().max() < 1 / 255


def test_progress_wraps_the_list_of_every_tile(image):
    seen = []

    def progress(tiles):
        seen.extend(tiles)
        return tiles

    tiled_apply(lambda x: x, image, tile=128, overlap=16, progress=progress)
    assert seen == [(i, j) for i in range(3) for j in range(5)]


@pytest.mark.parametrize("side", [40, 300])  # one tile, many tiles
def test_fn_runs_in_inference_mode_on_tiles_in_the_asked_memory_format(side):
    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(3))
    seen = []

    def fn(x):
        seen.append((torch.is_inference_mode_enabled(), x.is_contiguous(memory_format=torch.channels_last)))
        return x * 2

    out = tiled_apply(fn, image, tile=128, overlap=16, memory_format=torch.channels_last)
    assert seen and all(flags == (True, True) for flags in seen)
    assert (out - 2 * image).abs().max() < 1e-5
    assert not out.is_inference() and out.is_contiguous()
    out.clamp_(0, 1)  # an ordinary tensor: callers may change it in place


def test_peak_bytes_per_pixel_counts_the_tensors_alive_at_once():
    tile = torch.empty(2, 3, 10, 10, device="meta")  # 600 float32 values: 2400 bytes, 24 per pixel

    def two_alive(x):
        return (x * 2) + 1  # x * 2 lives while + 1 is computed

    def one_alive(x):
        doubled = x * 2
        del doubled
        return x * 3

    assert peak_bytes_per_pixel(two_alive, tile) == 48
    assert peak_bytes_per_pixel(one_alive, tile) == 24


def test_an_image_a_little_larger_than_a_tile_gets_tiles_no_larger_than_needed():
    """512² with tiles of at most 480 and overlap 32: 2×2 tiles of 272 (1.13× the pixels), not of 480 (3.5×)."""
    calls = []
    image = torch.rand(1, 1, 512, 512, generator=torch.Generator().manual_seed(4))
    out = tiled_apply(recording(box_blur, calls), image, tile=480, overlap=32, multiple=4)
    assert calls == [(1, 1, 272, 272)] * 4
    assert (out - box_blur(image)).abs().max() < 1 / 255
    assert axis_tiles(512, 480, 32, 4) == (272, [0, 240])
    assert axis_tiles(300, 480, 32, 4) == (300, [0])
