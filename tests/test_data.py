import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from generative.config import sr_config
from generative.kernels import gaussian_kernel
from generative.operators import degrade
from training.data import PairedImages, SyntheticDegradation, make_loader, validation_batch
from training.degradations import DegradationSpec, synthesize
from training.images import find_images, holdout_split, read_image
from training.sidd import load_sidd_validation

DENOISE = DegradationSpec(task="denoise", patch_size=32)


def _write_images(folder, count=3, size=(56, 64), seed=0):
    """Textured RGB PNGs img_0.png ... in `folder`; returns the uint8 arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = []
    for i in range(count):
        array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        iio.imwrite(folder / f"img_{i}.png", array)
        arrays.append(array)
    return arrays


@pytest.fixture
def folder(tmp_path):
    _write_images(tmp_path / "images")
    return tmp_path / "images"


def test_find_images_is_recursive_case_insensitive_and_sorted(tmp_path):
    array = np.zeros((4, 4, 3), dtype=np.uint8)
    for name in ("b.PNG", "a.jpg", "sub/c.Tif", "sub/deeper/d.bmp", "e.jpeg", "f.tiff"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(tmp_path / name, array, extension=(tmp_path / name).suffix.lower())
    (tmp_path / "notes.txt").write_text("not an image")
    found = find_images(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    assert names == sorted(names)
    assert set(names) == {"b.PNG", "a.jpg", "sub/c.Tif", "sub/deeper/d.bmp", "e.jpeg", "f.tiff"}


def test_find_images_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        find_images(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        find_images(tmp_path / "empty")
    with pytest.raises(ValueError, match="no images"):
        SyntheticDegradation(tmp_path / "empty", DENOISE)


def test_read_image_makes_three_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    iio.imwrite(tmp_path / "gray.png", gray)
    rgba = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    deep = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    iio.imwrite(tmp_path / "deep.png", deep)
    assert torch.equal(read_image(tmp_path / "gray.png"), torch.from_numpy(gray).expand(3, 3, 4))
    assert torch.equal(read_image(tmp_path / "rgba.png"), torch.from_numpy(rgba[..., :3]).permute(2, 0, 1))
    loaded = read_image(tmp_path / "deep.png")
    assert loaded.dtype == torch.uint16 and loaded.shape == (3, 3, 4)
    assert torch.equal(loaded[1].to(torch.int64), torch.from_numpy(deep.astype(np.int64)))


def test_denoising_example_shapes_and_loader_batches(folder):
    dataset = SyntheticDegradation(folder, DENOISE, length=8)
    example = dataset[0]
    assert example["y"].shape == example["x"].shape == (3, 32, 32)
    assert example["xi"].shape == example["sigma"].shape == (1, 32, 32)
    assert example["kernel_params_hat"].shape == (0,)
    assert all(v.dtype == torch.float32 for v in example.values())
    assert 0 <= example["x"].min() and example["x"].max() <= 1
    batch = next(iter(make_loader(dataset, batch_size=4, workers=0, seed=0)))
    assert batch["y"].shape == (4, 3, 32, 32) and batch["kernel_params_hat"].shape == (4, 0)


@pytest.mark.parametrize("scale", [2, 4])
def test_sr_example_shapes_and_the_same_operator(folder, scale):
    spec = DegradationSpec(task="sr", scale=scale, patch_size=48)
    example = SyntheticDegradation(folder, spec, deterministic=True)[1]
    lr = 48 // scale
    assert example["x"].shape == (3, 48, 48)
    assert example["y"].shape == (3, lr, lr)
    assert example["xi"].shape == example["sigma"].shape == (1, lr, lr)
    assert example["kernel_params_hat"].shape == (3,)
    # y − H x, with H rebuilt from Λ̂, is pure noise of the recorded level: same kernel, same ↓s.
    lam = example["kernel_params_hat"][None]
    hx = degrade(example["x"][None], gaussian_kernel(lam[:, :2], lam[:, 2]), scale, mode="bicubic")[0]
    residual = example["y"] - hx
    assert residual.std().item() == pytest.approx(example["sigma"][0, 0, 0].item(), rel=0.1)
    assert torch.all(example["sigma"] == example["sigma"][0, 0, 0])


@pytest.mark.parametrize("scale", [2, 4])
def test_the_kernel_patch_is_a_larger_view_of_the_same_degradation(tmp_path, scale):
    """KNet's patch y_kernel has y's kernel and noise; y is exactly H x plus that noise."""
    folder = tmp_path / "images"
    _write_images(folder, count=2, size=(96, 96))
    spec = DegradationSpec(task="sr", scale=scale, patch_size=16 * scale, kernel_patch_size=24 * scale)
    example = SyntheticDegradation(folder, spec, deterministic=True)[0]
    assert spec.crop_size == spec.kernel_patch_size
    big = spec.kernel_patch_size // scale
    assert example["y_kernel"].shape == (3, big, big) and example["y"].shape == (3, 16, 16)
    assert example["x"].shape == (3, 16 * scale, 16 * scale)
    lam = example["kernel_params_hat"][None]
    hx = degrade(example["x"][None], gaussian_kernel(lam[:, :2], lam[:, 2]), scale, mode="bicubic")[0]
    noise = example["y"] - hx
    assert noise.std().item() == pytest.approx(example["sigma"][0, 0, 0].item(), rel=0.15)
    # Away from the patch borders (blur and bicubic reach ≤ 5 LR pixels at ×4), y is the centre of y_kernel.
    offset = (big - 16) // 2
    inner = slice(5, 11)
    torch.testing.assert_close(
        example["y"][:, inner, inner], example["y_kernel"][:, offset + 5 : offset + 11, offset + 5 : offset + 11], atol=2e-3, rtol=0
    )
    batch = next(iter(make_loader(SyntheticDegradation(folder, spec, length=4), batch_size=2, workers=0, seed=0)))
    assert batch["y_kernel"].shape == (2, 3, big, big)


def test_sr_noise_starts_at_its_floor_and_a_kernel_patch_needs_sr():
    spec = DegradationSpec(task="sr", scale=2, patch_size=32)
    assert (spec.min_sigma, spec.max_sigma) == (pytest.approx(0.5 / 255), pytest.approx(15 / 255))
    assert DENOISE.min_sigma == 0.0
    sigma = synthesize(torch.rand(256, 3, 32, 32), spec, torch.Generator().manual_seed(0))["sigma"]
    assert sigma.min() >= 0.5 / 255 and sigma.max() <= 15 / 255
    for bad in (
        dict(task="denoise", patch_size=32, kernel_patch_size=64),
        dict(task="sr", scale=4, patch_size=64, kernel_patch_size=32),
        dict(task="sr", scale=4, patch_size=64, kernel_patch_size=130),
        dict(task="sr", scale=2, patch_size=32, min_sigma=0.1, max_sigma=0.05),
    ):
        with pytest.raises(ValueError):
            DegradationSpec(**bad)


@pytest.mark.parametrize(
    "spec",
    [
        DegradationSpec(task="denoise", patch_size=32, noise="niid"),
        DegradationSpec(task="denoise", patch_size=32, noise="bump"),
        DegradationSpec(task="sr", scale=2, patch_size=48),
    ],
    ids=["denoise-niid", "denoise-bump", "sr-x2"],
)
def test_xi_estimates_the_true_variance_on_average(folder, spec):
    dataset = SyntheticDegradation(folder, spec, length=12, deterministic=True)
    xi = sum(dataset[i]["xi"].mean() for i in range(12))
    variance = sum(dataset[i]["sigma"].pow(2).mean() for i in range(12))
    assert (xi / variance).item() == pytest.approx(1.0, abs=0.1)


def test_noisy_input_is_not_clipped(tmp_path):
    iio.imwrite(tmp_path / "flat.png", np.full((32, 32, 3), 255, dtype=np.uint8))
    spec = DegradationSpec(task="denoise", patch_size=32, noise="iid", max_sigma=0.5)
    ys = torch.stack([SyntheticDegradation(tmp_path, spec, length=4, deterministic=True)[i]["y"] for i in range(4)])
    assert ys.max() > 1.2


def test_eight_flips_and_rotations(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "one.png", image)
    dataset = SyntheticDegradation(tmp_path, DENOISE, length=64, deterministic=True)
    seen = {tuple(dataset[i]["x"].flatten().tolist()) for i in range(64)}
    base = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    expected = {
        tuple(torch.rot90(img, k, dims=(-2, -1)).flatten().tolist()) for img in (base, base.flip(-1)) for k in range(4)
    }
    assert seen == expected


def test_deterministic_examples_are_reproducible(folder):
    first = SyntheticDegradation(folder, DENOISE, length=6, seed=3, deterministic=True)
    again = SyntheticDegradation(folder, DENOISE, length=6, seed=3, deterministic=True, cache=False)
    other = SyntheticDegradation(folder, DENOISE, length=6, seed=4, deterministic=True)
    for key in ("y", "x", "xi", "sigma"):
        assert torch.equal(first[4][key], again[4][key])
    assert not torch.equal(first[4]["y"], other[4]["y"])
    assert not torch.equal(first[0]["y"], first[3]["y"])  # same image (index mod 3), new draw


def test_training_examples_follow_the_global_rng(folder):
    dataset = SyntheticDegradation(folder, DENOISE)
    torch.manual_seed(0)
    first, second_epoch = dataset[1]["y"], dataset[1]["y"]
    torch.manual_seed(0)
    assert torch.equal(dataset[1]["y"], first)
    assert not torch.equal(first, second_epoch)


def test_loader_is_reproducible_with_workers_and_epochs_differ(folder):
    dataset = SyntheticDegradation(folder, DENOISE, length=4)

    def two_epochs(loader):
        return [torch.cat([batch["y"] for batch in loader]) for _ in range(2)]

    loader = make_loader(dataset, batch_size=2, workers=2, seed=7)
    assert loader.persistent_workers and not loader.pin_memory
    run, rerun = two_epochs(loader), two_epochs(make_loader(dataset, batch_size=2, workers=2, seed=7))
    assert torch.equal(run[0], rerun[0]) and torch.equal(run[1], rerun[1])
    assert not torch.equal(run[0], run[1])
    assert run[0].shape == (4, 3, 32, 32)


def test_loader_errors_and_distributed_sampler(folder, tmp_path):
    dataset = SyntheticDegradation(folder, DENOISE)
    with pytest.raises(ValueError, match="fewer than one batch"):
        make_loader(dataset, batch_size=4, workers=0, seed=0)
    with pytest.raises(ValueError, match="workers"):
        make_loader(dataset, batch_size=1, workers=-1, seed=0)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        loader = make_loader(dataset, batch_size=3, workers=0, seed=0, distributed=True)
        assert isinstance(loader.sampler, DistributedSampler)
        assert next(iter(loader))["x"].shape == (3, 3, 32, 32)
    finally:
        dist.destroy_process_group()


def test_unusable_images_are_skipped_with_one_warning(folder):
    (folder / "broken.png").write_bytes(b"not a png")
    iio.imwrite(folder / "tiny.png", np.zeros((8, 8, 3), dtype=np.uint8))
    for cache in (True, False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = SyntheticDegradation(folder, DENOISE, cache=cache)
        ours = [w for w in caught if w.category is UserWarning]
        assert len(ours) == 1 and not [w for w in caught if w.category is ResourceWarning]
        message = str(ours[0].message)
        assert "skipped 2 of 5" in message and "1 unreadable" in message and "1 smaller" in message
        assert sorted(p.name for p in dataset.skipped) == ["broken.png", "tiny.png"]
        assert len(dataset) == 3 and dataset[2]["x"].shape == (3, 32, 32)


def test_no_usable_image_is_an_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="none of the 1 images is usable"):
        SyntheticDegradation([tmp_path / "broken.png"], DENOISE)


def test_sixteen_bit_images_map_to_unit_range(tmp_path):
    deep = np.full((32, 32), 65535, dtype=np.uint16)
    deep[:, :16] = 32768
    iio.imwrite(tmp_path / "deep.png", deep)
    x = SyntheticDegradation(tmp_path, DENOISE, deterministic=True)[0]["x"]
    assert torch.equal(x.unique(), torch.tensor([32768 / 65535, 1.0]))


def test_spec_defaults_and_validation():
    sr = DegradationSpec(task="sr", scale=4, patch_size=192)
    assert (sr.noise, sr.max_sigma, sr.downsampler, sr.window, sr.lr_patch_size) == ("iid", 15 / 255, "bicubic", 11, 48)
    assert (DENOISE.noise, DENOISE.max_sigma, DENOISE.downsampler, DENOISE.window) == ("niid", 75 / 255, None, 7)
    from_model = DegradationSpec.from_model_config(sr_config(2, window=9), patch_size=96)
    assert (from_model.scale, from_model.window, from_model.downsampler) == (2, 9, "bicubic")
    for bad in (
        dict(task="deblur"),
        dict(task="denoise", scale=2),
        dict(task="sr", scale=3, patch_size=48, noise="niid"),
        dict(task="sr", scale=4, patch_size=50),
        dict(task="sr", scale=4, patch_size=32),
        dict(task="sr", scale=2, patch_size=48, downsampler="nearest"),
        dict(task="denoise", patch_size=32, downsampler="bicubic"),
        dict(task="denoise", patch_size=32, window=6),
        dict(task="denoise", patch_size=32, sigma_channels=2),
    ):
        with pytest.raises(ValueError):
            DegradationSpec(**bad)


def _write_pair_folders(root, count=2, size=(36, 40)):
    rng = np.random.default_rng(2)
    for i in range(count):
        clean = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        for kind, array in (("clean", clean), ("noisy", 255 - clean)):
            (root / kind / "scene").mkdir(parents=True, exist_ok=True)
            iio.imwrite(root / kind / "scene" / f"{i}.png", array)


def test_paired_images_are_aligned(tmp_path):
    _write_pair_folders(tmp_path)
    spec = DegradationSpec(task="denoise", patch_size=32, sigma_channels=3)
    dataset = PairedImages(tmp_path / "noisy", tmp_path / "clean", spec, length=6, deterministic=True)
    assert len(dataset) == 6 and len(dataset.pairs) == 2
    for i in range(6):
        example = dataset[i]
        assert set(example) == {"y", "x", "xi", "kernel_params_hat"}
        assert torch.allclose(example["y"] + example["x"], torch.ones(3, 32, 32), atol=1e-6)
        assert example["xi"].shape == (3, 32, 32) and example["kernel_params_hat"].shape == (0,)
    batch = next(iter(make_loader(dataset, batch_size=3, workers=0, seed=0)))
    assert batch["xi"].shape == (3, 3, 32, 32)


def test_paired_images_need_every_clean_counterpart(tmp_path):
    _write_pair_folders(tmp_path)
    (tmp_path / "clean" / "scene" / "1.png").unlink()
    with pytest.raises(ValueError, match="1 noisy images have no clean counterpart"):
        PairedImages(tmp_path / "noisy", tmp_path / "clean", DENOISE)
    with pytest.raises(ValueError, match="task"):
        PairedImages(tmp_path / "noisy", tmp_path / "noisy", DegradationSpec(task="sr", scale=2, patch_size=48))


def test_sidd_medium_layout(tmp_path):
    rng = np.random.default_rng(3)
    for scene, index in (("0001_001_S6_00100_00060_3200_L", "010"), ("0002_001_S6_00100_00020_3200_N", "011")):
        clean = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        (tmp_path / "Data" / scene).mkdir(parents=True)
        iio.imwrite(tmp_path / "Data" / scene / f"{scene[:4]}_GT_SRGB_{index}.PNG", clean, extension=".png")
        iio.imwrite(tmp_path / "Data" / scene / f"{scene[:4]}_NOISY_SRGB_{index}.PNG", 255 - clean, extension=".png")
    dataset = PairedImages.from_sidd_medium(tmp_path, DENOISE, deterministic=True)
    assert [(n.name, c.name) for n, c in dataset.pairs] == [
        ("0001_NOISY_SRGB_010.PNG", "0001_GT_SRGB_010.PNG"),
        ("0002_NOISY_SRGB_011.PNG", "0002_GT_SRGB_011.PNG"),
    ]
    example = dataset[1]
    assert torch.allclose(example["y"] + example["x"], torch.ones(3, 32, 32), atol=1e-6)
    next((tmp_path / "Data").glob("0002*/*GT*")).unlink()
    with pytest.raises(ValueError, match="no ground truth"):
        PairedImages.from_sidd_medium(tmp_path, DENOISE)
    with pytest.raises(ValueError, match="no Data/"):
        PairedImages.from_sidd_medium(tmp_path / "Data", DENOISE)


def test_sidd_validation_blocks(tmp_path):
    rng = np.random.default_rng(4)
    noisy = rng.integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    clean = rng.integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    scipy.io.savemat(tmp_path / "noisy.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(tmp_path / "gt.mat", {"ValidationGtBlocksSrgb": clean})
    noisy_t, clean_t = load_sidd_validation(tmp_path / "noisy.mat", tmp_path / "gt.mat")
    assert noisy_t.shape == clean_t.shape == (6, 3, 8, 8) and noisy_t.dtype == torch.float32
    assert torch.equal(noisy_t[1 * 3 + 2], torch.from_numpy(noisy[1, 2]).permute(2, 0, 1).float() / 255)
    assert torch.equal(clean_t[4], torch.from_numpy(clean[1, 1]).permute(2, 0, 1).float() / 255)


def test_sidd_validation_errors(tmp_path):
    good = np.zeros((1, 2, 4, 4, 3), dtype=np.uint8)
    scipy.io.savemat(tmp_path / "gt.mat", {"ValidationGtBlocksSrgb": good})
    scipy.io.savemat(tmp_path / "wrong_key.mat", {"Blocks": good})
    scipy.io.savemat(tmp_path / "wrong_shape.mat", {"ValidationNoisyBlocksSrgb": good[0]})
    scipy.io.savemat(tmp_path / "other_size.mat", {"ValidationNoisyBlocksSrgb": good[:, :1]})
    with pytest.raises(ValueError, match="no variable 'ValidationNoisyBlocksSrgb'.*Blocks"):
        load_sidd_validation(tmp_path / "wrong_key.mat", tmp_path / "gt.mat")
    with pytest.raises(ValueError, match="images×blocks×h×w×3"):
        load_sidd_validation(tmp_path / "wrong_shape.mat", tmp_path / "gt.mat")
    with pytest.raises(ValueError, match="differ in shape"):
        load_sidd_validation(tmp_path / "other_size.mat", tmp_path / "gt.mat")
    with pytest.raises(ValueError, match="not found"):
        load_sidd_validation(tmp_path / "absent.mat", tmp_path / "gt.mat")


def test_holdout_split_is_stable_and_disjoint(tmp_path):
    paths = [tmp_path / "a" / f"photo_{i:03d}.png" for i in range(40)]
    train, val = holdout_split(paths, fraction=0.1)
    assert len(val) == 4 and len(train) == 36
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(paths)
    assert train == sorted(train) and val == sorted(val)
    moved = [tmp_path / "elsewhere" / p.name for p in reversed(paths)]
    assert [p.name for p in holdout_split(moved, fraction=0.1)[1]] == [p.name for p in val]
    assert holdout_split(paths, fraction=0.1, seed=1)[1] != val
    with pytest.raises(ValueError, match="fraction"):
        holdout_split(paths, fraction=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        holdout_split(paths[:1])


def test_validation_batch_is_fixed_centre_crops(folder):
    arrays = _write_images(folder)  # same content as the fixture's images
    spec = DegradationSpec(task="sr", scale=2, patch_size=32, window=9)
    batch = validation_batch(folder, spec, count=4, seed=5)
    again = validation_batch(folder, spec, count=4, seed=5)
    assert batch["y"].shape == (4, 3, 16, 16) and batch["kernel_params_hat"].shape == (4, 3)
    for key in batch:
        assert torch.equal(batch[key], again[key])
    centre = torch.from_numpy(arrays[1][12:44, 16:48]).permute(2, 0, 1).float() / 255
    assert torch.equal(batch["x"][1], centre)
    assert torch.equal(batch["x"][3], batch["x"][0]) and not torch.equal(batch["y"][3], batch["y"][0])
    assert not torch.equal(validation_batch(folder, spec, count=4, seed=6)["y"], batch["y"])
