"""Time per SVI step: Pyro's Trace_ELBO against a hand-written closed-form loss.

Both losses drive the same paper-size denoiser on the same batch with the same Adam
optimizer; runs are interleaved (A, B, A, B, ...) so that drifts in machine load hit both,
and the last line printed is the median of the per-pair ratios (Pyro / hand-written).
Target: <= 1.05, i.e. the probabilistic program costs at most 5% over plain PyTorch.

    python -m benchmarks.svi_overhead [--device cpu] [--batch 2] [--size 128] [--pairs 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import pyro
import torch

from generative.config import denoising_config
from generative.model import VIRNetModel
from guides.guide import VIRNetGuide, paper_guide_config
from training.closed_forms import analytic_elbo_denoising
from training.degradations import DegradationSpec, synthesize
from training.elbo import make_elbo


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    pyro.enable_validation(False)
    torch.manual_seed(0)

    config = denoising_config()
    guide = VIRNetGuide(config, paper_guide_config("denoise")).to(device)
    optimizer = torch.optim.Adam(guide.parameters(), lr=1e-4)
    spec = DegradationSpec.from_model_config(config, args.size)
    batch = synthesize(torch.rand(args.batch, 3, args.size, args.size, device=device), spec)
    y, x, xi = batch["y"], batch["x"], batch["xi"]
    pyro_loss = make_elbo("mc")(VIRNetModel(config), guide)

    def hand_written_loss() -> torch.Tensor:
        post = guide.posterior(y)
        return -analytic_elbo_denoising(y, x, xi, post.mu, post.beta, config)

    def timed_step(loss_fn) -> float:
        _synchronize(device)
        start = time.perf_counter()
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _synchronize(device)
        return time.perf_counter() - start

    losses = {"pyro Trace_ELBO": lambda: pyro_loss(y, x, xi), "hand-written closed form": hand_written_loss}
    for _ in range(args.warmup):
        for fn in losses.values():
            timed_step(fn)
    times = {name: [] for name in losses}
    for _ in range(args.pairs):
        for name, fn in losses.items():
            times[name].append(timed_step(fn))
    ratios = [a / b for a, b in zip(*times.values())]
    print(f"device {device}, denoiser {sum(p.numel() for p in guide.parameters()) / 1e6:.2f}M parameters, "
          f"batch {args.batch}×{args.size}², {args.pairs} interleaved pairs")
    for name, values in times.items():
        print(f"{name:>26}: median {statistics.median(values):.4f} s/step")
    print(f"median ratio (Pyro / hand-written): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
