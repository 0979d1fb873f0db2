"""Tables 5, 15, 16: blind SR with 7 Gaussian kernels × noise {0.1, 2.55, 7.65} × scale {2, 3, 4}.

    virnet bench sr --data DIR [--model NAME|PATH ...] [--compare-model NAME|PATH ...] [--scales 2 3 4]
        [--noises 0.1 2.55 7.65] ...
    python -m benchmarks.sr (same arguments)

HR images are cropped to a multiple of s; LR = clip(bicubic↓s(x ∗ k)) with a reflect-padded
blur by the 21×21 test kernel (generative.kernels.benchmark_kernel_lambdas) and the antialiased
bicubic downsampler; y = clip(LR + N(0,1)·σ), numpy default_rng(--seed) per (scale, kernel,
noise), images in sorted order. PSNR/SSIM on the Y channel (MATLAB rgb2ycbcr) with a border
crop of s² pixels (DESIGN.md: reproduces the published bicubic baseline), LPIPS (AlexNet) on
RGB when its weights are on disk. --model takes one model per scale (read from the file);
without it the embedded "sr-x{s}" are used where they exist; a scale without a model scores
the baselines only and marks VIRNet "n/a". --compare-model scores other models (one per scale)
the same way, as "compare": old and new weights side by side on the same cases.
--oracle-kernel also scores "virnet-true-kernel": the same guide with KNet's Λ replaced by the
true one (SNet's σ² kept), the PSNR that a perfect kernel estimate would give this RNet.
"""

from __future__ import annotations

import sys

import dataclasses

import numpy as np
import torch

from benchmarks import protocol
from benchmarks.cases import BENCHMARK_KERNEL_NAMES, benchmark_kernel_lambdas
from benchmarks.metrics import lpips_or_none, psnr_y, ssim_y
from generative.config import SR_SCALES
from generative.kernels import gaussian_kernel
from generative.operators import degrade
from guides.guide import VIRNetGuide
from virnet.api import load_for_task
from virnet.models import embedded_models

NAME = "sr"
TITLE = "blind super-resolution, 7 kernels (Tables 5, 15, 16)"
SCALES = SR_SCALES
NOISES = (0.1, 2.55, 7.65)
KERNEL_SIZE = 21
LPIPS_MISSING = "n/a (lpips weights not available)"
# Set14, averages over the 7 kernels: (psnr, ssim, lpips) per (scale, noise).
_PAPER_SET14 = {
    "virnet": {
        2: ((32.70, 0.9047, 0.1194), (31.48, 0.8695, 0.1764), (30.03, 0.8261, 0.2277)),
        3: ((29.44, 0.8190, 0.2518), (28.66, 0.7843, 0.2914), (27.65, 0.7431, 0.3309)),
        4: ((27.89, 0.7573, 0.3165), (27.18, 0.7255, 0.3524), (26.22, 0.6873, 0.3973)),
    },
    "bicubic": {
        2: ((28.04, 0.7940, 0.3096), (27.97, 0.7872, 0.3084), (27.41, 0.7405, 0.3892)),
        3: ((25.89, 0.6988, 0.4459), (25.84, 0.6936, 0.4637), (25.48, 0.6577, 0.5777)),
        4: ((24.54, 0.6352, 0.5257), (24.51, 0.6314, 0.5590), (24.25, 0.6051, 0.6749)),
    },
}


def paper_numbers() -> dict:
    """Row key "x{s}/avg/noise{n}/{method}" -> Set14 numbers (Tables 5, 15, 16)."""
    paper = {}
    for method, by_scale in _PAPER_SET14.items():
        for scale, rows in by_scale.items():
            for noise, (psnr, ssim, lpips) in zip(NOISES, rows):
                paper[f"x{scale}/avg/noise{noise:g}/{method}"] = {"psnr": psnr, "ssim": ssim, "lpips": lpips}
    return paper


def add_arguments(parser) -> None:
    protocol.add_common_arguments(
        parser, NAME, models="many", baseline_choices=("bicubic",), default_baselines=("bicubic",)
    )
    parser.add_argument(
        "--compare-model", nargs="+", metavar="NAME|PATH",
        help="other models (at most one per scale, e.g. the previous defaults) scored beside --model as 'compare'",
    )
    parser.add_argument(
        "--oracle-kernel", action="store_true",
        help="also score each model given the true kernel instead of KNet's estimate, as 'virnet-true-kernel'",
    )
    parser.add_argument("--scales", nargs="+", type=int, choices=SCALES, default=list(SCALES))
    parser.add_argument("--noises", nargs="+", type=float, default=list(NOISES), help="noise stds in /255 units")


def models_by_scale(args, device) -> dict[int, tuple[str, VIRNetGuide]]:
    """{scale: (spec, guide)} from --model (each file says its scale) or the embedded defaults."""
    if args.model:
        return _by_scale(args.model, device)
    names = embedded_models()
    return {s: (f"sr-x{s}", load_for_task(f"sr-x{s}", "sr", s, device)) for s in SCALES if f"sr-x{s}" in names}


def _by_scale(specs: list[str], device) -> dict[int, tuple[str, VIRNetGuide]]:
    """{scale: (spec, guide)} of model files or names, each of which says its scale."""
    found = {}
    for spec in specs:
        guide = load_for_task(spec, "sr", None, device)
        scale = guide.model_config.scale
        if scale in found:
            raise ValueError(f"two models for ×{scale}: {found[scale][0]} and {spec}")
        found[scale] = (spec, guide)
    return found


def sr_cases(
    images, scale: int, kernel: torch.Tensor, noise: float, seed: int, kernel_params: torch.Tensor | None = None
) -> list[protocol.Case]:
    """Degraded LR images of the HR `images` (cropped to a multiple of s), kernel K×K of
    Λ = `kernel_params` (shape 3, recorded in the cases)."""
    rng = np.random.default_rng(seed)
    cases = []
    for name, x in images:
        x = x[:, : x.shape[-2] // scale * scale, : x.shape[-1] // scale * scale]
        low = degrade(x[None], kernel[None], scale, "bicubic")[0].clamp(0, 1)
        y = (low + protocol.gaussian_noise(low.shape, rng) * (noise / 255)).clamp(0, 1)
        cases.append(protocol.Case(name, x, y, torch.full((1, *y.shape[-2:]), noise / 255), kernel, kernel_params))
    return cases


def true_kernel_method(guide: VIRNetGuide) -> protocol.Method:
    """The guide's µ (in float32, whole image) with q(Λ|y) centred on the case's true Λ in
    place of KNet's estimate; SNet's β as in the blind restore."""

    @torch.no_grad()
    def run(case: protocol.Case) -> protocol.Output:
        device = next(guide.parameters()).device
        y = case.y[None].to(device)
        params = case.kernel_params.to(device, torch.float32)[None]
        degradation = dataclasses.replace(guide.degradation(y), eta=params[:, :2], m=params[:, 2])
        image = guide.restoration_mean(y, degradation)[0].cpu()
        return protocol.Output(image, kernel=case.kernel, kernel_params=case.kernel_params)

    return run


def metrics_for(scale: int):
    """Y-channel PSNR/SSIM with an s² border crop, and LPIPS (or its "n/a" note)."""

    def metrics(output: protocol.Output, case: protocol.Case) -> dict:
        lpips = lpips_or_none(output.image, case.x)
        return {
            "psnr": psnr_y(output.image, case.x, crop=scale * scale),
            "ssim": ssim_y(output.image, case.x, crop=scale * scale),
            "lpips": LPIPS_MISSING if lpips is None else lpips,
        }

    return metrics


def kernel_average(rows: list[dict], scale: int, noise: float, method: str) -> dict:
    """Row "x{s}/avg/noise{n}/{method}": the mean over the 7 kernels of that method's rows."""
    chosen = [r for r in rows if (r["scale"], r["noise"], r["method"]) == (scale, noise, method)]
    average = protocol.average([{c: r[c] for c in ("psnr", "ssim", "lpips", "seconds")} for r in chosen])
    setting = f"x{scale}/avg/noise{noise:g}"
    row = {"key": f"{setting}/{method}", "setting": setting, "method": method, "scale": scale, "kernel": "avg"}
    return {**row, "noise": noise, **average}


def missing_model_row(scale: int, noise: float) -> dict:
    setting, missing = f"x{scale}/avg/noise{noise:g}", f"n/a (no model for ×{scale})"
    row = {"key": f"{setting}/virnet", "setting": setting, "method": "virnet", "scale": scale, "kernel": "avg"}
    return {**row, "noise": noise, "psnr": missing, "ssim": missing, "lpips": missing}


def score_scale(session, scale: int, methods: dict) -> tuple[list[dict], list]:
    """Per-kernel rows for every noise level, and the comparison-figure row (kernel aniso3,
    the middle noise level)."""
    args = session.args
    lambdas = benchmark_kernel_lambdas(scale)
    kernels = gaussian_kernel(lambdas[:, :2], lambdas[:, 2], KERNEL_SIZE)
    shown_noise = args.noises[len(args.noises) // 2]
    rows, figure = [], []
    for noise in args.noises:
        for kernel_name, kernel, kernel_params in zip(BENCHMARK_KERNEL_NAMES, kernels, lambdas):
            cases = sr_cases(session.images, scale, kernel, noise, args.seed, kernel_params)
            key = f"x{scale}/{kernel_name}/noise{noise:g}"
            descriptors = {"scale": scale, "kernel": kernel_name, "noise": noise}
            kernel_rows, outputs = protocol.score_setting(key, cases, methods, metrics_for(scale), descriptors)
            rows += kernel_rows
            if kernel_name == "aniso3" and noise == shown_noise:
                figure.append(protocol.figure_row(f"×{scale} {kernel_name} σ={noise:g}", cases[0], outputs))
    return rows, figure


def run(args) -> int:
    if any(n < 0 for n in args.noises):
        raise ValueError(f"--noises must be non-negative, got {args.noises}")
    session = protocol.start(args)
    models = models_by_scale(args, session.device)
    compared = _by_scale(args.compare_model or [], session.device)
    baselines = {name: protocol.BASELINE_METHODS[name] for name in protocol.selected_baselines(session)}
    rows, averages, figure = [], [], []
    for scale in args.scales:
        methods = dict(baselines)
        if scale in compared:
            methods["compare"] = protocol.model_method(compared[scale][1])
        if scale in models:
            methods["virnet"] = protocol.model_method(models[scale][1])
            if args.oracle_kernel:
                methods["virnet-true-kernel"] = true_kernel_method(models[scale][1])
        scale_rows, scale_figure = score_scale(session, scale, methods)
        rows += scale_rows
        figure += scale_figure
        for noise in args.noises:
            averages += [kernel_average(scale_rows, scale, noise, method) for method in methods]
            if scale not in models:
                averages.append(missing_model_row(scale, noise))
    session.out.mkdir(parents=True, exist_ok=True)
    protocol.comparison_figure(session.out / "comparison.png", figure)
    plot_rows = [{**r, "method": f"{r['method']} ×{r['scale']}", "setting": f"noise{r['noise']:g}"} for r in averages]
    levels = {f"noise{n:g}": n for n in args.noises}
    protocol.level_plot(session.out / "psnr_vs_noise.png", plot_rows, levels, "psnr", "noise σ (/255)")
    session.notes += notes(args, rows)
    unused = sorted(set(models) - set(args.scales))
    if unused:
        session.notes.append(f"Models for {', '.join(f'×{s}' for s in unused)} not scored: not in --scales.")
    model = "; ".join(f"×{s}: " + (protocol.describe_guide(*models[s]) if s in models else "n/a") for s in args.scales)
    if compared:
        model += "; compare: " + "; ".join(f"×{s}: {protocol.describe_guide(*compared[s])}" for s in sorted(compared))
    rows = averages + rows
    known = {r["key"] for r in rows}
    session.finish(TITLE, model, rows, {k: v for k, v in paper_numbers().items() if k in known})
    return 0


def notes(args, rows) -> list[str]:
    lines = [
        "Paper numbers: Set14 averages over the 7 kernels (Tables 5, 15, 16), not this dataset.",
        "Metrics: Y channel (rgb2ycbcr) PSNR/SSIM with a border crop of s² pixels; LPIPS (AlexNet) on RGB.",
        f"Degradation: reflect-padded blur, bicubic ↓s, clip, + N(0,1)·σ from default_rng({args.seed}) "
        "per (scale, kernel, noise), clip.",
        "Figures: comparison.png (kernel aniso3, middle noise level; LR shown nearest-upsampled), psnr_vs_noise.png.",
    ]
    if any(r.get("lpips") == LPIPS_MISSING for r in rows):
        lines.append(
            f"LPIPS: {LPIPS_MISSING} (needs the lpips package and cached AlexNet weights; nothing is downloaded)."
        )
    return lines


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "sr", argv)


if __name__ == "__main__":
    sys.exit(main())
