"""Table 9: blur-kernel estimation, MSE between g(Λ̂) and the true kernel, ×4, noise 2.55.

    virnet bench kernel-estimation --data DIR [--model NAME|PATH] [--noises 2.55] ...
    python -m benchmarks.kernel_estimation (same arguments)

The 4 anisotropic test kernels at ×4 (21×21), LR synthesised as in `virnet bench sr`. The
estimate is VIRNet's kernel image g(η, m) (Eq. 8), normalised to sum 1 like the truth; the
error is the mean over the 21×21 grid of the squared difference. Baseline "delta": the
no-blur kernel, a floor any estimator should beat.
"""

from __future__ import annotations

import sys

import torch

from benchmarks import protocol
from benchmarks.metrics import kernel_mse
from benchmarks.report import comparison_grid
from benchmarks.sr import KERNEL_SIZE, sr_cases
from generative.kernels import ANISOTROPIC, TEST_KERNEL_NAMES, gaussian_kernel, test_kernel_lambdas
from virnet.api import load_for_task

NAME = "kernel-estimation"
TITLE = "blur-kernel estimation, 4 anisotropic kernels, ×4 (Table 9)"
SCALE = 4
NOISES = (2.55,)
PAPER = {"avg/noise2.55/virnet": {"kernel_mse": 0.89e-5}}  # Table 9, DIV2K20


def add_arguments(parser) -> None:
    protocol.add_common_arguments(
        parser, NAME, baseline_choices=("delta",), default_baselines=("delta",), pseudo_methods=("ground-truth",)
    )
    parser.add_argument("--noises", nargs="+", type=float, default=list(NOISES), help="noise stds in /255 units")


def delta(case: protocol.Case) -> protocol.Output:
    """The no-blur kernel: 1 at the centre of the K×K grid."""
    kernel = torch.zeros_like(case.kernel)
    kernel[KERNEL_SIZE // 2, KERNEL_SIZE // 2] = 1.0
    return protocol.Output(kernel=kernel)


def metrics(output: protocol.Output, case: protocol.Case) -> dict:
    return {"kernel_mse": kernel_mse(output.kernel, case.kernel)}


def run(args) -> int:
    if any(n < 0 for n in args.noises):
        raise ValueError(f"--noises must be non-negative, got {args.noises}")
    session = protocol.start(args)
    guide = load_for_task(args.model, "sr", SCALE, session.device)
    available = {"delta": delta, "ground-truth": protocol.ground_truth}
    methods = {name: available[name] for name in protocol.selected_baselines(session)}
    methods["virnet"] = protocol.model_method(guide)
    lambdas = test_kernel_lambdas(SCALE)[ANISOTROPIC]
    kernels = gaussian_kernel(lambdas[:, :2], lambdas[:, 2], KERNEL_SIZE)
    rows, figure = [], []
    for noise in args.noises:
        noise_rows = []
        for name, kernel in zip(TEST_KERNEL_NAMES[ANISOTROPIC], kernels):
            cases = sr_cases(session.images, SCALE, kernel, noise, args.seed)
            descriptors = {"kernel": name, "noise": noise}
            setting = f"{name}/noise{noise:g}"
            kernel_rows, outputs = protocol.score_setting(setting, cases, methods, metrics, descriptors)
            noise_rows += kernel_rows
            if noise == args.noises[0]:
                figure.append(kernel_panels(name, kernel, outputs))
        for method in methods:
            chosen = [{c: r[c] for c in ("kernel_mse", "seconds")} for r in noise_rows if r["method"] == method]
            setting = f"avg/noise{noise:g}"
            rows.append({"key": f"{setting}/{method}", "setting": setting, "method": method, "kernel": "avg",
                         "noise": noise, **protocol.average(chosen)})
        rows += noise_rows
    session.out.mkdir(parents=True, exist_ok=True)
    comparison_grid(figure, session.out / "kernels.png")
    averages = [r for r in rows if r["kernel"] == "avg"]
    protocol.level_plot(
        session.out / "kernel_mse_vs_noise.png", averages, {f"avg/noise{n:g}": n for n in args.noises},
        "kernel_mse", "noise σ (/255)",
    )
    session.notes += [
        "Paper number: VIRNet on DIV2K20, ×4, noise 2.55 (Table 9), not this dataset.",
        "LR synthesis as in `virnet bench sr` (reflect blur, bicubic ↓4, clip, noise, clip).",
        "Figures: kernels.png (true and estimated kernels, first image), kernel_mse_vs_noise.png.",
    ]
    paper = {k: v for k, v in PAPER.items() if k in {r["key"] for r in rows}}
    session.finish(TITLE, protocol.describe_guide(args.model, guide), rows, paper)
    return 0


def kernel_panels(name: str, kernel: torch.Tensor, outputs: dict) -> list:
    panels = [(f"{name}: true", kernel)]
    return panels + [(label, o.kernel) for label, o in outputs.items() if label != "ground-truth"]


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "kernel_estimation", argv)


if __name__ == "__main__":
    sys.exit(main())
