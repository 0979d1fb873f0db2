"""Table 2: blind AWGN denoising at σ = 15, 25, 50 (/255), PSNR/SSIM on RGB uint8.

    virnet bench denoise-iid --data DIR [--model NAME|PATH] [--sigmas 15 25 50] ...
    python -m benchmarks.denoise_iid (same arguments)

y = x + N(0,1)·σ with numpy default_rng(--seed) per σ, no clipping. NLM and BM3D get the true σ.
"""

from __future__ import annotations

import sys

import torch

from benchmarks import denoising, protocol

NAME = "denoise-iid"
TITLE = "AWGN denoising (Table 2)"
SIGMAS = (15, 25, 50)
# Table 2, CBSD68 (NLM is not in Table 2).
PAPER = {
    "sigma15/virnet": {"psnr": 34.27, "ssim": 0.9340},
    "sigma25/virnet": {"psnr": 31.65, "ssim": 0.8918},
    "sigma50/virnet": {"psnr": 28.45, "ssim": 0.8092},
    "sigma15/bm3d": {"psnr": 33.56, "ssim": 0.9237},
    "sigma25/bm3d": {"psnr": 30.81, "ssim": 0.8700},
    "sigma50/bm3d": {"psnr": 27.47, "ssim": 0.7680},
}


def add_arguments(parser) -> None:
    protocol.add_common_arguments(parser, NAME, baseline_choices=("nlm", "bm3d"), default_baselines=("nlm", "bm3d"))
    denoising.add_other_model_arguments(parser)
    parser.add_argument("--sigmas", nargs="+", type=float, default=list(SIGMAS), help="noise stds in /255 units")


def run(args) -> int:
    if any(s <= 0 for s in args.sigmas):
        raise ValueError(f"--sigmas must be positive, got {args.sigmas}")
    session = protocol.start(args)
    settings = []
    for level in args.sigmas:
        sigma = lambda height, width, level=level: torch.full((1, height, width), level / 255)
        settings.append((f"sigma{level:g}", level, protocol.noisy_cases(session.images, sigma, args.seed)))
    session.notes += [
        "Paper numbers: VIRNet and CBM3D on CBSD68 (Table 2), not on this dataset.",
        f"Noise: default_rng({args.seed}), one generator per σ, images in sorted order.",
    ]
    denoising.run_denoising(session, TITLE, settings, PAPER, xlabel="σ (/255)")
    return 0


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "denoise_iid", argv)


if __name__ == "__main__":
    sys.exit(main())
