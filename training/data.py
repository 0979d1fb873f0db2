"""Training and validation data: image folders → (y, x, ξ, Λ̂, σ) examples.

Synthetic data follows DESIGN.md "Synthetic training data": a random HR patch, one of the 8
flips/rotations, then the degradation of `generative` — the same `degrade` operator and
noise synthesis the Pyro model's likelihood describes — and ξ = G((y − Hx)²; p) (Eq. 5)
from that same operator and kernel. y is never clipped.

Every example is a dict of tensors (default collate stacks them into a batch):
  "y"           C×h×w   degraded image (LR for SR)
  "x"           C×H×W   clean HR patch
  "xi"          c×h×w   ξ of Eq. 5, c = spec.sigma_channels
  "lambda_hat"  (3,)    Λ̂ = (λ1², λ2², ρ) of the blur kernel (SR), (0,) for denoising
  "sigma"       1×h×w   true noise std map (synthetic data only: for real noise pairs the
                        true σ is unknown and the key is absent)
  "y_kernel"    C×h'×w' SR with a `kernel_patch_size`: the larger LR patch around y, with the
                        same kernel and noise level, that the guide's KNet reads

Randomness: each example draws from its own torch.Generator. With ``deterministic=True``
its seed is a function of (seed, index) only, so an index always gives the same example
(validation, tests). With ``deterministic=False`` (training) one number drawn from the
process's global torch RNG is mixed in as well: `make_loader` seeds that RNG distinctly in
each worker from its seeded generator, so workers and epochs differ while a whole run stays
reproducible for a fixed seed and worker count.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import scipy.io
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from generative.config import TASK_DEFAULTS, TRAINING_NOISE, ModelConfig
from generative.kernels import gaussian_kernel, sample_kernel_lambdas
from generative.noise import add_gaussian_noise, iid_sigma_map, training_sigma_map
from generative.operators import degrade
from generative.variance_prior import variance_prior_estimate

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
TASKS = ("denoise", "sr")
NOISE_KINDS = ("niid", "iid", "bump")
DOWNSAMPLERS = ("bicubic", "direct")
SIDD_NOISY_KEY = "ValidationNoisyBlocksSrgb"
SIDD_GT_KEY = "ValidationGtBlocksSrgb"
_INTEGER_RANGES = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def find_images(folder) -> list[Path]:
    """All images (png/jpg/jpeg/bmp/tif/tiff, any case) under `folder`, recursively, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
    return paths


def read_image(path) -> torch.Tensor:
    """Decode an image file as a 3×H×W uint8 or uint16 tensor (grayscale repeated to 3
    channels, alpha dropped). Unreadable files and other sample types raise ValueError.
    16-bit TIFFs keep 16 bits; PNGs go through Pillow, which reads 16-bit RGB PNGs at 8 bits."""
    array = _decode(Path(path), iio.imread)
    if array.dtype not in _INTEGER_RANGES:
        raise ValueError(f"image {path} has unsupported sample type {array.dtype} (need uint8 or uint16)")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image {path} has unsupported shape {array.shape}")
    rgb = np.repeat(array[:, :, :1], 3, axis=2) if array.shape[2] <= 2 else array[:, :, :3]
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


@dataclass(frozen=True)
class DegradationSpec:
    """How clean HR patches become training examples.

    task: "denoise" (scale 1, no blur) or "sr" (blur with a random kernel, downsample by
    `scale`, add i.i.d. noise). patch_size: side of the HR patch (a multiple of scale).
    noise: "niid" (half Gaussian bumps, half i.i.d.), "iid" or "bump" (denoising; SR noise
    is always "iid"). min_sigma, max_sigma: the range of the i.i.d. σ (denoising [0, 75/255],
    SR [0.5/255, 15/255]; the bumps have their own range, DESIGN.md). downsampler: "bicubic"
    (SR default) or "direct"; None for denoising. window: p of ξ (Eq. 5; 7 denoising, 11 SR).
    sigma_channels: channels of ξ (1, or 3 for per-channel real noise). kernel_size: side of
    the blur kernel (SR). kernel_patch_size: SR only, the side of a larger HR patch whose
    degradation KNet reads ("y_kernel"); the patch y is its centre (None: KNet reads y).
    Fields left as None take the task's default
    (generative.config.TASK_DEFAULTS and TRAINING_NOISE).
    """

    task: str = "denoise"
    scale: int = 1
    patch_size: int = 128
    noise: str | None = None
    min_sigma: float | None = None
    max_sigma: float | None = None
    downsampler: str | None = None
    window: int | None = None
    sigma_channels: int = 1
    kernel_size: int = 21
    kernel_patch_size: int | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        sr = self.task == "sr"
        defaults = {
            **TRAINING_NOISE[self.task],
            "downsampler": TASK_DEFAULTS["sr"]["downsampler"] if sr else None,
            "window": TASK_DEFAULTS[self.task]["window"],
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if not sr and self.scale != 1:
            raise ValueError(f"denoising has scale 1, got {self.scale!r}")
        if sr and (not isinstance(self.scale, int) or self.scale < 2):
            raise ValueError(f"super-resolution scale must be an integer >= 2, got {self.scale!r}")
        if self.noise not in NOISE_KINDS or (sr and self.noise != "iid"):
            allowed = ("iid",) if sr else NOISE_KINDS
            raise ValueError(f"noise {self.noise!r} is not one of {allowed} for task {self.task!r}")
        if sr and self.downsampler not in DOWNSAMPLERS:
            raise ValueError(f"unknown downsampler {self.downsampler!r}; expected one of {DOWNSAMPLERS}")
        if not sr and self.downsampler is not None:
            raise ValueError("denoising has no downsampler; leave downsampler as None")
        if not 0 <= self.min_sigma <= self.max_sigma:
            raise ValueError(f"need 0 <= min_sigma <= max_sigma, got {self.min_sigma!r} and {self.max_sigma!r}")
        if not isinstance(self.window, int) or self.window < 3 or self.window % 2 == 0:
            raise ValueError(f"window p must be an odd integer >= 3, got {self.window!r}")
        if self.sigma_channels not in (1, 3):
            raise ValueError(f"sigma_channels must be 1 or 3, got {self.sigma_channels!r}")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {self.kernel_size!r}")
        if not isinstance(self.patch_size, int) or self.patch_size % self.scale != 0:
            raise ValueError(f"patch_size must be an integer multiple of scale {self.scale}, got {self.patch_size!r}")
        if self.patch_size // self.scale < self.window or (sr and self.patch_size <= self.kernel_size // 2):
            raise ValueError(
                f"patch_size {self.patch_size} is too small for window {self.window} at scale {self.scale}"
                + (f" and kernel size {self.kernel_size}" if sr else "")
            )

        if self.kernel_patch_size is not None and (
            not sr
            or not isinstance(self.kernel_patch_size, int)
            or self.kernel_patch_size % self.scale != 0
            or self.kernel_patch_size < self.patch_size
        ):
            raise ValueError(
                f"kernel_patch_size (SR only) must be a multiple of scale {self.scale} and at least "
                f"patch_size {self.patch_size}, got {self.kernel_patch_size!r}"
            )

    @property
    def crop_size(self) -> int:
        """Side of the HR crop taken from an image: the kernel patch when there is one."""
        return self.kernel_patch_size or self.patch_size

    @property
    def lr_patch_size(self) -> int:
        """Side of the degraded patch y: patch_size // scale."""
        return self.patch_size // self.scale

    @classmethod
    def from_model_config(cls, config: ModelConfig, patch_size: int, **overrides) -> DegradationSpec:
        """The spec matching a model's task, scale, window, kernel size, downsampler and
        σ channels, so that ξ and H are those of the model's likelihood."""
        settings = {
            "task": config.task,
            "scale": config.scale,
            "patch_size": patch_size,
            "window": config.window,
            "sigma_channels": config.sigma_channels,
            "kernel_size": config.kernel_size,
            "downsampler": config.downsampler if config.task == "sr" else None,
        }
        return cls(**{**settings, **overrides})


def synthesize(x: torch.Tensor, spec: DegradationSpec, generator: torch.Generator | None = None) -> dict:
    """Degrade clean patches x (B×C×P×P in [0, 1], P = spec.crop_size) as `spec` says;
    draws on x's device.

    Returns batched "y" (B×C×h×w, unclipped), "x", "xi" (B×c×h×w, Eq. 5 with the same H
    that made y), "lambda_hat" (B×3 for SR, B×0 for denoising) and "sigma" (B×1×h×w). With
    a kernel patch, x is first degraded whole into "y_kernel"; the returned x is its centre
    patch (offset a multiple of s) and y = Hx plus the same noise as that part of y_kernel.
    """
    if x.dim() != 4 or x.shape[-2:] != (spec.crop_size, spec.crop_size):
        raise ValueError(f"x must be B×C×{spec.crop_size}×{spec.crop_size}, got {tuple(x.shape)}")
    batch, _, size, _ = x.shape
    if spec.task == "denoise":
        hx = x
        sigma = _denoising_sigma(batch, size, spec, generator, x)
        lambda_hat = x.new_zeros(batch, 0)
    else:
        lambda_hat = sample_kernel_lambdas(batch, spec.scale, generator, device=x.device).to(x.dtype)
        kernel = gaussian_kernel(lambda_hat[:, :2], lambda_hat[:, 2], size=spec.kernel_size)
        hx = degrade(x, kernel, spec.scale, mode=spec.downsampler)  # Eq. 26
        side = size // spec.scale
        sigma = iid_sigma_map(batch, side, side, spec.max_sigma, generator, device=x.device, min_sigma=spec.min_sigma)
    y = add_gaussian_noise(hx, sigma, generator)
    extra = {}
    if spec.crop_size != spec.patch_size:
        offset = (spec.crop_size - spec.patch_size) // 2 // spec.scale  # LR pixels
        lr, hr = slice(offset, offset + spec.lr_patch_size), slice(offset * spec.scale, offset * spec.scale + spec.patch_size)
        extra["y_kernel"] = y
        x = x[..., hr, hr]
        noise, sigma = (y - hx)[..., lr, lr], sigma[..., lr, lr]
        hx = degrade(x, kernel, spec.scale, mode=spec.downsampler)
        y = hx + noise
    xi = variance_prior_estimate(y, hx, spec.window, spec.sigma_channels)  # Eq. 5
    return {"y": y, "x": x, "xi": xi, "lambda_hat": lambda_hat, "sigma": sigma.to(x.dtype), **extra}


class _StoredImages(Dataset):
    """Base of the image datasets: spec, seed, the decoded-image store, an epoch length."""

    def _load(self, groups, spec, length, seed, cache, deterministic) -> None:
        self.spec = spec
        self.seed = _check_seed(seed)
        self.deterministic = deterministic
        self._store = _ImageStore(groups, spec.crop_size, cache)
        self.skipped = self._store.skipped
        self.length = _check_length(length, len(self._store.groups))

    def __len__(self) -> int:
        return self.length


class SyntheticDegradation(_StoredImages):
    """Random patches of clean images, degraded on the fly by `synthesize`.

    folder_or_paths: a folder (searched with `find_images`) or a list of image files.
    length: examples per epoch (default: the number of usable images); index i uses image
    i mod n. cache: keep the decoded images in RAM (uint8, or uint16 for 16-bit files); else
    each example decodes its file again (only headers are checked up front). Unreadable
    images and images smaller than the patch are skipped with one warning and listed in
    `self.skipped`. See the module docstring for `seed` and `deterministic`.
    """

    def __init__(
        self,
        folder_or_paths,
        spec: DegradationSpec,
        length: int | None = None,
        seed: int = 0,
        cache: bool = True,
        deterministic: bool = False,
    ) -> None:
        self._load([[p] for p in _image_paths(folder_or_paths)], spec, length, seed, cache, deterministic)
        self.paths = [group[0] for group in self._store.groups]

    def __getitem__(self, index: int) -> dict:
        _check_index(index, self.length)
        generator = _item_generator(self.seed, index, self.deterministic)
        (image,) = self._store.images(index % len(self.paths))
        patch = _augment(_to_unit(_random_crop(image, self.spec.crop_size, generator)), generator)
        example = synthesize(patch[None], self.spec, generator)
        return {key: value[0] for key, value in example.items()}


class PairedImages(_StoredImages):
    """Real noisy/clean pairs: random aligned patches with one of the 8 flips/rotations.

    noisy_dir/clean_dir hold files with the same relative names. Examples have "y" (noisy),
    "x" (clean), "xi" (Eq. 5 from y − x with spec.window and spec.sigma_channels) and an
    empty "lambda_hat"; there is no "sigma", as the true noise level is unknown. Only
    spec.task == "denoise", patch_size, window and sigma_channels are used. Full-size
    photos are large (SIDD-Medium is ~29 GB decoded): pass cache=False for such sets.
    Other arguments as in `SyntheticDegradation`.
    """

    def __init__(
        self,
        noisy_dir,
        clean_dir,
        spec: DegradationSpec,
        length: int | None = None,
        seed: int = 0,
        cache: bool = True,
        deterministic: bool = False,
    ) -> None:
        self._setup(_folder_pairs(Path(noisy_dir), Path(clean_dir)), spec, length, seed, cache, deterministic)

    @classmethod
    def from_sidd_medium(cls, root, spec: DegradationSpec, **kwargs) -> PairedImages:
        """Pairs of the SIDD-Medium sRGB layout: root/Data/<scene>/*_NOISY_SRGB_*.PNG with
        the *_GT_SRGB_* file of the same scene and index."""
        dataset = cls.__new__(cls)
        dataset._setup(_sidd_medium_pairs(Path(root)), spec, **kwargs)
        return dataset

    def _setup(self, pairs, spec, length=None, seed=0, cache=True, deterministic=False) -> None:
        if spec.task != "denoise":
            raise ValueError("paired noisy/clean data is for denoising: spec.task must be 'denoise'")
        self._load(pairs, spec, length, seed, cache, deterministic)
        self.pairs = [tuple(group) for group in self._store.groups]

    def __getitem__(self, index: int) -> dict:
        _check_index(index, self.length)
        generator = _item_generator(self.seed, index, self.deterministic)
        noisy, clean = self._store.images(index % len(self.pairs))
        both = _random_crop(torch.cat((noisy, clean)), self.spec.patch_size, generator)
        y, x = _augment(_to_unit(both), generator).chunk(2)
        xi = variance_prior_estimate(y[None], x[None], self.spec.window, self.spec.sigma_channels)[0]  # Eq. 5
        return {"y": y, "x": x, "xi": xi, "lambda_hat": x.new_zeros(0)}


def load_sidd_validation(noisy_mat, gt_mat) -> tuple[torch.Tensor, torch.Tensor]:
    """SIDD validation blocks as (noisy, clean), each N×3×h×w float32 in [0, 1].

    The .mat files hold `ValidationNoisyBlocksSrgb` / `ValidationGtBlocksSrgb`, uint8 arrays
    of shape images×blocks×h×w×3 (40×32×256×256×3: N = 1280, ~1 GB per returned tensor).
    """
    noisy = _mat_blocks(Path(noisy_mat), SIDD_NOISY_KEY)
    clean = _mat_blocks(Path(gt_mat), SIDD_GT_KEY)
    if noisy.shape != clean.shape:
        raise ValueError(f"noisy blocks {noisy.shape} and clean blocks {clean.shape} differ in shape")
    return _blocks_to_tensor(noisy), _blocks_to_tensor(clean)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    seed: int,
    distributed: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A shuffling training DataLoader with full batches only (drop_last).

    The shuffle order and each worker's RNG seed come from a generator seeded by (seed,
    rank), so a run is reproducible for a fixed seed and worker count. distributed: shard
    with a DistributedSampler (torch.distributed must be initialised; call
    `loader.sampler.set_epoch(epoch)` every epoch). Workers persist across epochs.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    sampler = DistributedSampler(dataset, shuffle=True, seed=_check_seed(seed), drop_last=True) if distributed else None
    per_rank = len(sampler) if sampler is not None else len(dataset)
    if per_rank < batch_size:
        raise ValueError(f"{per_rank} examples per epoch (per process) are fewer than one batch of {batch_size}")
    rank = sampler.rank if sampler is not None else 0
    generator = torch.Generator()
    generator.manual_seed(_mixed_seed([_check_seed(seed), rank]))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=_seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
        drop_last=True,
    )


def holdout_split(paths: Iterable, fraction: float = 0.1, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Split image paths into (train, val), both sorted, val holding round(fraction·n) of
    them (at least 1, at most n − 1): those whose file names rank first by a seeded hash.
    The split depends only on the file names and seed, not on their order or folder.
    """
    paths = [Path(p) for p in paths]
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if len(paths) < 2:
        raise ValueError(f"need at least 2 images to split, got {len(paths)}")
    ranked = sorted(paths, key=lambda p: (hashlib.sha256(f"{seed}/{p.name}".encode()).hexdigest(), p.as_posix()))
    n_val = min(len(paths) - 1, max(1, round(fraction * len(paths))))
    return sorted(ranked[n_val:]), sorted(ranked[:n_val])


def validation_batch(folder_or_paths, spec: DegradationSpec, count: int, seed: int) -> dict:
    """A fixed batch of `count` degraded centre crops (same keys as the datasets, batched).

    The first `count` images are used (unusable ones skipped with one warning, the rest
    cycled through to fill `count`); example i is a centre patch degraded with a generator
    seeded by (seed, i) only, so the same arguments always give the same batch.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    store = _ImageStore([[p] for p in _image_paths(folder_or_paths)[:count]], spec.crop_size, cache=True)
    examples = []
    for index in range(count):
        (image,) = store.images(index % len(store.groups))
        generator = _item_generator(_check_seed(seed), index, deterministic=True)
        examples.append(synthesize(_to_unit(_centre_crop(image, spec.crop_size))[None], spec, generator))
    return {key: torch.cat([example[key] for example in examples]) for key in examples[0]}


class _ImageStore:
    """Groups of images (one file, or a noisy/clean pair) that are readable, of equal size
    within a group and at least `min_size` on each side; optionally decoded once and kept."""

    def __init__(self, groups: Sequence[Sequence[Path]], min_size: int, cache: bool) -> None:
        self.groups: list[list[Path]] = []
        self.skipped: list[Path] = []
        self._cached: list[list[torch.Tensor]] | None = [] if cache else None
        reasons: dict[str, int] = {}
        for group in groups:
            try:
                images = [read_image(p) for p in group] if cache else None
                sizes = [tuple(img.shape[-2:]) for img in images] if cache else [_header_size(p) for p in group]
            except ValueError:
                self._skip(group, "unreadable", reasons)
                continue
            if len(set(sizes)) != 1:
                raise ValueError(f"paired images differ in size: {', '.join(f'{p} {s}' for p, s in zip(group, sizes))}")
            if min(sizes[0]) < min_size:
                self._skip(group, f"smaller than {min_size}×{min_size}", reasons)
                continue
            self.groups.append(list(group))
            if self._cached is not None:
                self._cached.append(images)
        if reasons:
            detail = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
            warnings.warn(
                f"skipped {len(self.skipped)} of {len(groups)} images ({detail}); see .skipped",
                stacklevel=3,
            )
        if not self.groups:
            raise ValueError(f"none of the {len(groups)} images is usable (unreadable or smaller than {min_size})")

    def _skip(self, group: Sequence[Path], reason: str, reasons: dict[str, int]) -> None:
        self.skipped.append(group[0])
        reasons[reason] = reasons.get(reason, 0) + 1

    def images(self, index: int) -> list[torch.Tensor]:
        if self._cached is not None:
            return self._cached[index]
        return [read_image(p) for p in self.groups[index]]


def _header_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels."""
    props = _decode(path, iio.improps)
    if props.dtype not in _INTEGER_RANGES or len(props.shape) not in (2, 3):
        raise ValueError(f"image {path} has unsupported type {props.dtype} or shape {props.shape}")
    return tuple(props.shape[:2])


def _decode(path: Path, read):
    """Call imageio's `read` (imread or improps) on an open file, which is closed even when
    decoding fails. TIFFs go to imageio's choice of plugin (tifffile keeps 16-bit RGB), the
    rest to Pillow, so that a broken file is not probed by every legacy plugin."""
    suffix = path.suffix.lower()
    plugin = None if suffix in (".tif", ".tiff") else "pillow"
    try:
        with open(path, "rb") as handle:
            return read(handle, extension=suffix, plugin=plugin)
    except Exception as error:  # any decoder failure means "unreadable"
        raise ValueError(f"cannot read image {path}: {error}") from None


def _image_paths(folder_or_paths) -> list[Path]:
    if isinstance(folder_or_paths, (str, Path)):
        return find_images(folder_or_paths)
    paths = [Path(p) for p in folder_or_paths]
    if not paths:
        raise ValueError("the list of image paths is empty")
    return paths


def _folder_pairs(noisy_dir: Path, clean_dir: Path) -> list[list[Path]]:
    if not clean_dir.is_dir():
        raise ValueError(f"clean image folder not found: {clean_dir}")
    pairs = [[p, clean_dir / p.relative_to(noisy_dir)] for p in find_images(noisy_dir)]
    missing = [clean for _, clean in pairs if not clean.is_file()]
    if missing:
        raise ValueError(f"{len(missing)} noisy images have no clean counterpart, e.g. {missing[0]}")
    return pairs


def _sidd_medium_pairs(root: Path) -> list[list[Path]]:
    data = root / "Data"
    if not data.is_dir():
        raise ValueError(f"SIDD-Medium folder {root} has no Data/ subfolder")
    noisy = sorted(p for p in data.glob("*/*") if "_NOISY_SRGB_" in p.name.upper() and p.suffix.lower() == ".png")
    if not noisy:
        raise ValueError(f"no *_NOISY_SRGB_*.PNG files under {data}/<scene>/")
    pairs = []
    for path in noisy:
        at = path.name.upper().index("_NOISY_SRGB_")
        clean = path.with_name(path.name[:at] + "_GT_SRGB_" + path.name[at + len("_NOISY_SRGB_") :])
        if not clean.is_file():
            raise ValueError(f"SIDD noisy image {path} has no ground truth {clean.name}")
        pairs.append([path, clean])
    return pairs


def _mat_blocks(path: Path, key: str) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"SIDD validation file not found: {path}")
    try:
        contents = scipy.io.loadmat(path, variable_names=[key])
    except NotImplementedError:
        raise ValueError(f"{path} is a MATLAB v7.3 (HDF5) file; save it as v7 or earlier") from None
    except Exception as error:  # scipy raises several types for malformed files
        raise ValueError(f"cannot read MATLAB file {path}: {error}") from None
    if key not in contents:
        names = [name for name, _, _ in scipy.io.whosmat(path)]
        raise ValueError(f"{path} has no variable {key!r} (it has {names})")
    blocks = contents[key]
    if blocks.ndim != 5 or blocks.shape[-1] != 3 or blocks.dtype != np.uint8:
        raise ValueError(
            f"{key} in {path} must be uint8 of shape images×blocks×h×w×3, got {blocks.dtype} {blocks.shape}"
        )
    return blocks


def _blocks_to_tensor(blocks: np.ndarray) -> torch.Tensor:
    """images×blocks×h×w×3 uint8 -> N×3×h×w float32 in [0, 1]."""
    flat = blocks.reshape(-1, *blocks.shape[2:])
    return torch.from_numpy(np.ascontiguousarray(flat.transpose(0, 3, 1, 2))).float().div_(255)


def _denoising_sigma(batch, size, spec, generator, like) -> torch.Tensor:
    """B×1×P×P σ maps: Gaussian bumps, i.i.d. levels, or half and half ("niid")."""
    if spec.noise == "iid":
        return iid_sigma_map(batch, size, size, spec.max_sigma, generator, device=like.device, min_sigma=spec.min_sigma)
    bumps = training_sigma_map(batch, size, size, generator, device=like.device)
    if spec.noise == "bump":
        return bumps
    levels = iid_sigma_map(batch, size, size, spec.max_sigma, generator, device=like.device, min_sigma=spec.min_sigma)
    draw_device = generator.device if generator is not None else None
    use_bump = torch.rand(batch, generator=generator, device=draw_device) < 0.5
    return torch.where(use_bump.to(like.device).view(-1, 1, 1, 1), bumps, levels)


def _item_generator(seed: int, index: int, deterministic: bool) -> torch.Generator:
    """The generator of example `index` (see the module docstring)."""
    words = [seed, index]
    if not deterministic:
        words.append(int(torch.randint(0, 2**62, ())))
    generator = torch.Generator()
    generator.manual_seed(_mixed_seed(words))
    return generator


def _mixed_seed(words: list[int]) -> int:
    """A well-mixed 63-bit seed from a list of non-negative integers."""
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0]) >> 1


def _seed_worker(worker_id: int) -> None:
    """DataLoader worker init: derive numpy's and Python's global seeds from torch's
    per-worker seed (torch's is already distinct per worker)."""
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _random_crop(image: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    height, width = image.shape[-2:]
    top = int(torch.randint(0, height - size + 1, (), generator=generator))
    left = int(torch.randint(0, width - size + 1, (), generator=generator))
    return image[..., top : top + size, left : left + size]


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return image[..., top : top + size, left : left + size]


def _augment(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of the 8 flips/rotations of the square (k quarter turns, then a mirror if k >= 4)."""
    k = int(torch.randint(0, 8, (), generator=generator))
    image = torch.rot90(image, k % 4, dims=(-2, -1))
    return (image.flip(-1) if k >= 4 else image).contiguous()


def _to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8/uint16 -> float32 in [0, 1]."""
    top = 255 if image.dtype == torch.uint8 else 65535
    return image.to(torch.float32) / top


def _check_seed(seed: int) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return seed


def _check_length(length: int | None, images: int) -> int:
    if length is None:
        return images
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    return length


def _check_index(index: int, length: int) -> None:
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} examples")
