"""The SIDD real-noise data (https://www.eecs.yorku.ca/~kamel/sidd/): the validation blocks
(.mat) and the noisy/clean pairs of SIDD-Medium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

SIDD_NOISY_KEY = "ValidationNoisyBlocksSrgb"
SIDD_GT_KEY = "ValidationGtBlocksSrgb"


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


def sidd_medium_pairs(root: Path) -> list[list[Path]]:
    """[noisy, clean] pairs of the SIDD-Medium sRGB layout: root/Data/<scene>/*_NOISY_SRGB_*.PNG
    with the *_GT_SRGB_* file of the same scene and index."""
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
