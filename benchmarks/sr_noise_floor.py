"""Why SR trains on σ ≥ 0.5/255: the KL_σ² of near-noiseless training examples.

    python -m benchmarks.sr_noise_floor --data DIR [--model NAME|PATH] [--examples N]

Synthesises N ×4 training examples (64-px HR patches from the training split of DIR) with
σ ~ U[min, 15/255] for min = 0 and 0.5/255, and prints, for the given ×4 guide, the mean
KL(q(σ²|y) ‖ p(σ²)) per observed pixel (Eq. 22) and that of the examples with σ < 0.5/255.
"""

from __future__ import annotations

import argparse
import sys

import torch

from training.closed_forms import kl_sigma2
from training.data import SyntheticDegradation
from training.degradations import DegradationSpec
from training.images import find_images, holdout_split
from virnet.inputs import load_for_task

FLOOR = 0.5 / 255
MAX_SIGMA = 15 / 255


def kl_per_pixel(guide, min_sigma: float, paths, examples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(KL_σ² per observed pixel: N, σ of each example: N) for training noise U[min_sigma, 15/255]."""
    spec = DegradationSpec(task="sr", scale=4, patch_size=64, min_sigma=min_sigma, max_sigma=MAX_SIGMA)
    data = SyntheticDegradation(paths, spec, length=examples, seed=0)
    batch = [data[i] for i in range(examples)]
    y, xi = torch.stack([b["y"] for b in batch]), torch.stack([b["xi"] for b in batch])
    with torch.no_grad():
        beta = torch.cat([guide.degradation(y[i : i + 32]).beta for i in range(0, examples, 32)])
    sigma = torch.stack([b["sigma"].flatten()[0] for b in batch])
    return kl_sigma2(beta, xi, guide.model_config.alpha0) / y[0].numel(), sigma


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training photos")
    parser.add_argument("--model", default="sr-x4", help="a ×4 model (embedded name or .safetensors)")
    parser.add_argument("--examples", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    guide = load_for_task(args.model, "sr", 4, torch.device("cpu")).eval()
    paths = holdout_split(find_images(args.data), 0.1, 0)[0]
    for min_sigma in (0.0, FLOOR):
        kl, sigma = kl_per_pixel(guide, min_sigma, paths, args.examples)
        low = sigma < FLOOR
        low_text = f"{float(kl[low].mean()):.1f}" if low.any() else "none"
        print(f"σ ~ U[{min_sigma * 255:.1f}, 15]/255: KL_σ² per pixel {float(kl.mean()):.1f} on average; "
              f"{int(low.sum())} of {args.examples} examples below 0.5/255, their KL_σ² {low_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
