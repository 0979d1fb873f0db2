"""Tables 3-5 model profiles: parameters, FLOPs and runtime of the posterior's forward pass.

    virnet bench profile [--model NAME|PATH] [--paper denoise sr real] [--repeats 5] ...
    python -m benchmarks.profile (same arguments)

Models: --model (else every embedded default) and the paper-size networks with random weights
(guides.guide.paper_guide_config, "denoise", "sr" and "denoise-real": RNet widths 96-160-224-288 × 3
blocks, SNet depth 8, 3 σ channels). FLOPs: torch.utils.flop_counter.FlopCounterMode over
one `guide.posterior(y)` (SNet, KNet, RNet) on the meta device (no arithmetic is done), for a
--denoise-size² image (512) or a --sr-size² HR output (256); gmacs = gflops / 2, the
multiply-accumulate count that papers usually call FLOPs. Runtime: median over --repeats
timed forward passes (after one warm-up) at the same sizes on --device (--quick: 32×32).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import protocol
from generative.config import denoising_config, sr_config
from guides.guide import VIRNetGuide, paper_guide_config
from virnet.api import load_for_task
from virnet.models import embedded_models

NAME = "profile"
TITLE = "parameters, FLOPs and runtime (Tables 3-5)"
PAPER_MODELS = ("denoise", "sr", "real")
QUICK_SIZE = 32
QUICK_REPEATS = 2
# Tables 3 (synthetic denoiser), 4 (real denoiser) and 5 (×4 SR); their "FLOPs" compare with
# our gmacs. Runtimes are the paper's, on its own GPU.
PAPER = {
    "paper-denoise": {"params_m": 10.54, "gmacs": 680.0},
    "paper-denoise-real": {"params_m": 15.40, "gmacs": 658.0, "runtime_s": 0.88},
    "paper-sr-x4": {"params_m": 5.72, "gmacs": 370.0, "runtime_s": 0.161},
}


def add_arguments(parser) -> None:
    protocol.add_common_arguments(parser, NAME, data=False, pseudo_methods=())
    parser.add_argument("--paper", nargs="*", choices=PAPER_MODELS, default=list(PAPER_MODELS),
                        help="paper-size random-init models to profile (default: all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes per model (default 5)")
    parser.add_argument("--denoise-size", type=int, default=512, help="denoising input side (default 512)")
    parser.add_argument("--sr-size", type=int, default=256, help="SR output (HR) side (default 256)")


def paper_guide(kind: str) -> tuple[str, VIRNetGuide]:
    """(label, random-init paper-size guide) for "denoise", "sr" (×4) or "real"."""
    torch.manual_seed(0)
    if kind == "sr":
        return "paper-sr-x4", VIRNetGuide(sr_config(4), paper_guide_config("sr"))
    if kind == "real":
        return "paper-denoise-real", VIRNetGuide(denoising_config(sigma_channels=3), paper_guide_config("denoise-real"))
    return "paper-denoise", VIRNetGuide(denoising_config(), paper_guide_config("denoise"))


def input_side(guide: VIRNetGuide, args) -> int:
    """Side of the network input y for the profile size (the LR side for SR)."""
    scale = guide.model_config.scale
    return args.sr_size // scale if scale > 1 else args.denoise_size


def count_flops(guide: VIRNetGuide, side: int) -> int:
    """FLOPs of one posterior pass on a 1×C×side×side input, counted on the meta device."""
    with torch.device("meta"):
        twin = VIRNetGuide(guide.model_config, guide.guide_config)
        y = torch.empty(1, guide.model_config.image_channels, side, side)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        twin.posterior(y)
    return counter.get_total_flops()


def runtime(guide: VIRNetGuide, side: int, repeats: int, device: torch.device) -> float:
    """Median seconds of `repeats` posterior passes on a random 1×C×side×side input."""
    guide = guide.to(device).eval()
    y = torch.rand(1, guide.model_config.image_channels, side, side, generator=torch.Generator().manual_seed(0))
    y = y.to(device)
    times = []
    with torch.no_grad():
        for attempt in range(repeats + 1):
            began = time.perf_counter()
            guide.posterior(y)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if attempt:
                times.append(time.perf_counter() - began)
    return statistics.median(times)


def millions(module) -> float:
    return 0.0 if module is None else sum(p.numel() for p in module.parameters()) / 1e6


def profile_row(label: str, guide: VIRNetGuide, args, device: torch.device) -> dict:
    side = input_side(guide, args)
    scale = guide.model_config.scale
    timed_side = QUICK_SIZE // scale if args.quick else side
    flops = count_flops(guide, side)
    return {
        "key": label,
        "task": guide.model_config.task if scale == 1 else f"sr-x{scale}",
        "size": f"{side * scale}×{side * scale}",
        "params_m": millions(guide),
        "snet_m": millions(guide.snet),
        "knet_m": millions(guide.knet),
        "rnet_m": millions(guide.rnet),
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "runtime_s": runtime(guide, timed_side, args.repeats, device),
        "runtime_size": f"{timed_side * scale}×{timed_side * scale}",
    }


def run(args) -> int:
    if args.repeats < 1 or min(args.denoise_size, args.sr_size) < QUICK_SIZE:
        raise ValueError(f"--repeats must be ≥ 1 and the sizes ≥ {QUICK_SIZE}")
    if args.quick:
        args.repeats = min(args.repeats, QUICK_REPEATS)
    session = protocol.start(args)
    specs = [args.model] if args.model else embedded_models()
    models = [(spec, load_for_task(spec, None, None, torch.device("cpu"))) for spec in specs]
    if not specs:
        session.notes.append("No embedded default models are shipped yet: only the paper-size networks.")
    models += [paper_guide(kind) for kind in dict.fromkeys(args.paper)]
    if not models:
        raise ValueError("nothing to profile: give --model or --paper")
    rows = [profile_row(label, guide, args, session.device) for label, guide in models]
    session.notes += notes(args)
    described = "; ".join(protocol.describe_guide(spec, guide) for spec, guide in models[: len(specs)])
    known = {r["key"] for r in rows}
    session.finish(TITLE, described or "paper-size networks, random init", rows,
                   {k: v for k, v in PAPER.items() if k in known})
    return 0


def notes(args) -> list[str]:
    sr_twice = count_flops(paper_guide("sr")[1], args.sr_size // 2) / 2e9
    return [
        "gflops: torch FlopCounterMode (2 per multiply-accumulate); gmacs = gflops / 2 compares with the "
        "paper's 'FLOPs' (Tables 3-5), which match multiply-accumulates.",
        f"The paper's SR 'FLOPs' (370 G, 'LR 256×256' in Table 5's caption) match a {2 * args.sr_size}² HR "
        f"output: {sr_twice:.0f} G MACs here for the paper-size ×4 model.",
        "Paper runtimes are on the authors' GPU at their sizes; ours on the device above at runtime_size.",
        "Runtime: median of --repeats forward passes of guide.posterior after one warm-up (no tiling).",
    ]


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "profile", argv)


if __name__ == "__main__":
    sys.exit(main())
