"""Real-noise denoising: SIDD validation blocks (.mat) or any folder of noisy/clean pairs.

    virnet bench denoise-real --data DIR [--model NAME|PATH] ...
    python -m benchmarks.denoise_real (same arguments)

DIR holds either the SIDD validation files ValidationNoisyBlocksSrgb.mat and
ValidationGtBlocksSrgb.mat (1280 blocks of 256×256), or noisy/ and clean/ folders with the
same relative file names (--holdout splits them by the noisy file names). PSNR/SSIM on RGB
uint8. NLM and BM3D get the oracle σ = std(y − x) of each image. --quick: two small built-in
images with signal-dependent noise of variance a·x + b (a stand-in for real noise).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from benchmarks import denoising, protocol
from benchmarks.cases import poisson_gaussian_noise
from training.images import find_images, holdout_split, read_image
from training.sidd import load_sidd_validation
from virnet.models import embedded_models

NAME = "denoise-real"
TITLE = "real-noise denoising (SIDD validation, noisy/clean pairs)"
SETTING = "real"
SIDD_FILES = ("ValidationNoisyBlocksSrgb.mat", "ValidationGtBlocksSrgb.mat")
DEFAULT_MODEL = "denoise-real"
QUICK_GAIN, QUICK_FLOOR = 0.02, (5 / 255) ** 2  # a and b of the quick stand-in noise
# SIDD validation: VIRNet and the MSE-trained ResUNet from Tables 12 and 14; CBM3D from
# Table 4, which is on the SIDD benchmark (test) blocks.
PAPER = {
    "real/virnet": {"psnr": 39.63, "ssim": 0.9194},
    "real/mse": {"psnr": 39.51, "ssim": 0.9187},
    "real/bm3d": {"psnr": 25.65, "ssim": 0.685},
}


def add_arguments(parser) -> None:
    protocol.add_common_arguments(parser, NAME, baseline_choices=("nlm", "bm3d"), default_baselines=("nlm", "bm3d"))
    denoising.add_other_model_arguments(parser)


def select_pairs(args) -> tuple[str, list[tuple[str, torch.Tensor]]]:
    """(description, [(name, 2×3×H×W: noisy, clean)]) from --quick or --data."""
    if args.quick:
        generator = torch.Generator().manual_seed(args.seed)
        description, images = protocol.select_images(args)
        pairs = []
        for name, x in images:
            y, _ = poisson_gaussian_noise(x[None], QUICK_GAIN, QUICK_FLOOR, generator)
            pairs.append((name, torch.stack([y[0].clamp(0, 1), x])))
        return f"{description}; signal-dependent noise a={QUICK_GAIN}, b=(5/255)², clipped", pairs
    if args.data is None:
        raise ValueError("--data DIR is required (or --quick)")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of images, got {args.limit}")
    root = Path(args.data)
    if all((root / name).is_file() for name in SIDD_FILES):
        if args.holdout:
            raise ValueError("--holdout splits image folders; the SIDD validation blocks are held out already")
        noisy, clean = load_sidd_validation(*(root / name for name in SIDD_FILES))
        noisy, clean = noisy[: args.limit], clean[: args.limit]
        pairs = [(f"block{i:04d}", torch.stack(pair)) for i, pair in enumerate(zip(noisy, clean))]
        return f"SIDD validation blocks in {root}: {len(pairs)} blocks", pairs
    if not (root / "noisy").is_dir() or not (root / "clean").is_dir():
        raise ValueError(f"{root} holds neither {' and '.join(SIDD_FILES)} nor noisy/ and clean/ folders")
    paths = find_images(root / "noisy")
    description = f"noisy/clean pairs in {root} ({len(paths)} pairs)"
    if args.holdout:
        paths = holdout_split(paths, protocol.HOLDOUT_FRACTION, seed=protocol.HOLDOUT_SEED)[1]
        description += f", held-out split (0.1, seed=0): {len(paths)}"
    paths = paths[: args.limit]
    pairs = []
    for path in paths:
        clean = root / "clean" / path.relative_to(root / "noisy")
        if not clean.is_file():
            raise ValueError(f"noisy image {path} has no clean counterpart {clean}")
        noisy_image, clean_image = protocol.to_unit(read_image(path)), protocol.to_unit(read_image(clean))
        if noisy_image.shape != clean_image.shape:
            raise ValueError(f"{path} and {clean} differ in size")
        pairs.append((path.stem, torch.stack([noisy_image, clean_image])))
    return description, pairs


def real_cases(pairs) -> list[protocol.Case]:
    """Cases with the oracle σ map: the constant std(y − x) of each image."""
    cases = []
    for name, (y, x) in pairs:
        sigma = torch.full((1, *x.shape[-2:]), float((y - x).std()))
        cases.append(protocol.Case(name, x, y, sigma))
    return cases


def run(args) -> int:
    session = protocol.start(args, select_pairs)
    model = DEFAULT_MODEL if DEFAULT_MODEL in embedded_models() else None
    if args.model is None and model is None:
        session.notes.append(f"No embedded {DEFAULT_MODEL!r} model: the synthetic-noise default 'denoise' was used.")
    sidd = "SIDD" in session.dataset
    session.notes.append(
        "Paper numbers (SIDD only): VIRNet and MSE ResUNet on the SIDD validation blocks (Tables 12, 14); "
        "CBM3D on the SIDD benchmark blocks (Table 4)." if sidd else "The paper has no numbers for this dataset."
    )
    session.notes.append("NLM/BM3D are given the oracle σ = std(noisy − clean) per image.")
    settings = [(SETTING, 0.0, real_cases(session.images))]
    denoising.run_denoising(session, TITLE, settings, PAPER if sidd else {}, xlabel=None, model=model)
    return 0


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "denoise_real", argv)


if __name__ == "__main__":
    sys.exit(main())
