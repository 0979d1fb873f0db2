"""Training and validation datasets and the loader: image folders → (y, x, ξ, Λ̂, σ) examples.

A synthetic example is a random HR patch of a clean image (`training.images`), one of the 8
flips/rotations, then `training.degradations.synthesize`: the model's own operator and noise,
and ξ = G((y − Hx)²; p) (Eq. 5) from that same operator and kernel. y is never clipped. Real
noise comes as noisy/clean pairs (folders, or SIDD-Medium: `training.sidd`).

Every example is a dict of tensors (default collate stacks them into a batch):
  "y"           C×h×w   degraded image (LR for SR)
  "x"           C×H×W   clean HR patch
  "xi"          c×h×w   ξ of Eq. 5, c = spec.sigma_channels
  "kernel_params_hat"  (3,)    Λ̂ = (λ1², λ2², ρ) of the blur kernel (SR), (0,) for denoising
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

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from generative.variance_prior import variance_prior_estimate
from training.degradations import DegradationSpec, synthesize
from training.images import ImageStore, folder_pairs, image_paths, to_unit
from training.sidd import sidd_medium_pairs


class _StoredImages(Dataset):
    """Base of the image datasets: spec, seed, the decoded-image store, an epoch length."""

    def _load(self, groups, spec, length, seed, cache, deterministic) -> None:
        self.spec = spec
        self.seed = _check_seed(seed)
        self.deterministic = deterministic
        self._store = ImageStore(groups, spec.crop_size, cache)
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
        self._load([[p] for p in image_paths(folder_or_paths)], spec, length, seed, cache, deterministic)
        self.paths = [group[0] for group in self._store.groups]

    def __getitem__(self, index: int) -> dict:
        _check_index(index, self.length)
        generator = _item_generator(self.seed, index, self.deterministic)
        (image,) = self._store.images(index % len(self.paths))
        patch = _augment(to_unit(_random_crop(image, self.spec.crop_size, generator)), generator)
        example = synthesize(patch[None], self.spec, generator)
        return {key: value[0] for key, value in example.items()}


class PairedImages(_StoredImages):
    """Real noisy/clean pairs: random aligned patches with one of the 8 flips/rotations.

    noisy_dir/clean_dir hold files with the same relative names. Examples have "y" (noisy),
    "x" (clean), "xi" (Eq. 5 from y − x with spec.window and spec.sigma_channels) and an
    empty "kernel_params_hat"; there is no "sigma", as the true noise level is unknown. Only
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
        self._setup(folder_pairs(Path(noisy_dir), Path(clean_dir)), spec, length, seed, cache, deterministic)

    @classmethod
    def from_sidd_medium(cls, root, spec: DegradationSpec, **kwargs) -> PairedImages:
        """Pairs of the SIDD-Medium sRGB layout: root/Data/<scene>/*_NOISY_SRGB_*.PNG with
        the *_GT_SRGB_* file of the same scene and index."""
        dataset = cls.__new__(cls)
        dataset._setup(sidd_medium_pairs(Path(root)), spec, **kwargs)
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
        y, x = _augment(to_unit(both), generator).chunk(2)
        xi = variance_prior_estimate(y[None], x[None], self.spec.window, self.spec.sigma_channels)[0]  # Eq. 5
        return {"y": y, "x": x, "xi": xi, "kernel_params_hat": x.new_zeros(0)}


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


def validation_batch(folder_or_paths, spec: DegradationSpec, count: int, seed: int) -> dict:
    """A fixed batch of `count` degraded centre crops (same keys as the datasets, batched).

    The first `count` images are used (unusable ones skipped with one warning, the rest
    cycled through to fill `count`); example i is a centre patch degraded with a generator
    seeded by (seed, i) only, so the same arguments always give the same batch.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    store = ImageStore([[p] for p in image_paths(folder_or_paths)[:count]], spec.crop_size, cache=True)
    examples = []
    for index in range(count):
        (image,) = store.images(index % len(store.groups))
        generator = _item_generator(_check_seed(seed), index, deterministic=True)
        examples.append(synthesize(to_unit(_centre_crop(image, spec.crop_size))[None], spec, generator))
    return {key: torch.cat([example[key] for example in examples]) for key in examples[0]}


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
