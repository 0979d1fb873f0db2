"""Table 1: blind non-i.i.d. Gaussian denoising, Cases 1-3, PSNR/SSIM on RGB uint8.

    virnet bench denoise-niid --data DIR [--model NAME|PATH] [--out DIR] [--quick] ...
    python -m benchmarks.denoise_niid (same arguments)

Case c: σ map benchmarks.cases.table1_sigma_map(c, H, W, rng=numpy default_rng(1000)) (values in
[10, 75]/255), y = x + N(0,1)·σ with numpy default_rng(--seed) per case, the same σ on all
channels, no clipping. NLM and BM3D are given the true σ (the mean of the map).
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch

from benchmarks import denoising, protocol
from benchmarks.cases import TABLE1_CASES, table1_sigma_map

NAME = "denoise-niid"
TITLE = "non-i.i.d. Gaussian denoising, Cases 1-3 (Table 1)"
MAP_SEED = 1000
# Table 1, CBSD68.
PAPER = {
    "case1/virnet": {"psnr": 29.28, "ssim": 0.8353},
    "case2/virnet": {"psnr": 28.93, "ssim": 0.8269},
    "case3/virnet": {"psnr": 29.19, "ssim": 0.8323},
    "case1/nlm": {"psnr": 24.06, "ssim": 0.6190},
    "case2/nlm": {"psnr": 22.40, "ssim": 0.5582},
    "case3/nlm": {"psnr": 24.07, "ssim": 0.6153},
    "case1/bm3d": {"psnr": 26.73, "ssim": 0.7660},
    "case2/bm3d": {"psnr": 25.42, "ssim": 0.7040},
    "case3/bm3d": {"psnr": 26.85, "ssim": 0.7360},
}


def add_arguments(parser) -> None:
    protocol.add_common_arguments(parser, NAME, baseline_choices=("nlm", "bm3d"), default_baselines=("nlm", "bm3d"))
    denoising.add_other_model_arguments(parser)


@functools.lru_cache(maxsize=16)
def _case_map(case: int, height: int, width: int) -> torch.Tensor:
    return table1_sigma_map(case, height, width, rng=np.random.default_rng(MAP_SEED))[None]


def case_sigma(case: int):
    """(H, W) -> 1×H×W σ map of Table 1's Case `case` (shared, do not modify it in place)."""
    return lambda height, width: _case_map(case, height, width)


def run(args) -> int:
    session = protocol.start(args)
    settings = [
        (f"case{c}", c, protocol.noisy_cases(session.images, case_sigma(c), args.seed)) for c in TABLE1_CASES
    ]
    session.notes += [
        "Paper numbers: VIRNet, NLM and CBM3D on CBSD68 (Table 1), not on this dataset.",
        f"σ maps: table1_sigma_map(case, H, W, rng=default_rng({MAP_SEED})); noise: default_rng({args.seed}), "
        "one generator per case, images in sorted order.",
    ]
    denoising.run_denoising(session, TITLE, settings, PAPER, xlabel="Case")
    return 0


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "denoise_niid", argv)


if __name__ == "__main__":
    sys.exit(main())
