"""Table 9 and kernel tracking: blur-kernel estimation at ×2, ×3 or ×4 (default ×4).

    virnet bench kernel-estimation --data DIR [--model NAME|PATH] [--scale S] [--kernels anisotropic|all|random] ...
    python -m benchmarks.kernel_estimation (same arguments)

Cases: every image with every kernel of the chosen set — "anisotropic": the 4 anisotropic
test kernels of Table 9 (default); "all": the 7 test kernels of the scale; "random": --per-image kernels
per image drawn from the training distribution (Eq. 27, seeded by --seed). LR synthesised as
in `virnet bench sr` (reflect blur, bicubic ↓s, clip, noise, clip), whole images.

Scores, per method:
- kernel_mse: the mean over the 21×21 grid of the squared difference between the kernel
  image g(Λ̂) (Eq. 8, sum 1) and the true one (Table 9);
- err_lambda1, err_lambda2, err_rho: the mean absolute error of each parameter of Λ;
- r_lambda1, r_lambda2, r_rho: Pearson's r between estimated and true parameter over all
  cases of a noise level (the "avg" rows). A kernel MSE alone cannot tell an estimator from
  a constant guess; a constant scores r = 0 however well placed it is.
- r_lambda1_lo, r_lambda1_hi (and for λ2², ρ): the 95 % bootstrap interval of each r,
  resampling whole photos with replacement (a photo's cases err together, see image_share),
  so how firmly a set of photos this size pins r down (about ±0.06 for ×2 λ1² on 48 photos).
- image_share_lambda1, image_share_lambda2: the share of the variance of the log error
  log(λ̂²/λ²) over all cases that is a per-image offset (the variance of each image's mean
  log error, over the total). Near 1: the estimate errs by how the photo looks, the same for
  every kernel (fine texture read as sharpness, defocus as blur); near 0: by kernel or noise.
- sharpness_r_lambda1, sharpness_r_lambda2: Pearson's r over the photos between that per-photo
  offset and the HR photo's own sharpness along the same axis (`metrics.axis_sharpness`, x
  for λ1², y for λ2²). Strongly negative: the estimator mistakes the photo's own detail for
  the kernel's (a sharp photo gets too narrow a kernel). Needs at least 3 photos to mean much.

Baselines: "delta", the no-blur kernel; "constant", the best constant kernel for the
training kernel distribution (the Λ whose kernel image has the least mean squared error to
kernels drawn from Eq. 27's distribution); "ground-truth".
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from functools import cache

import torch

from benchmarks import protocol
from benchmarks.cases import ANISOTROPIC, BENCHMARK_KERNEL_NAMES, benchmark_kernel_lambdas
from benchmarks.metrics import axis_sharpness, kernel_mse
from benchmarks.report import comparison_grid
from benchmarks.sr import KERNEL_SIZE, sr_cases
from generative.kernels import gaussian_kernel
from training.degradations import sample_kernel_lambdas
from training.validation import KERNEL_PARAMETERS, kernel_correlations, pearson
from virnet.api import load_for_task

NAME = "kernel-estimation"
TITLE = "blur-kernel estimation, ×{scale} (Table 9): kernel MSE, parameter errors and correlations"
SCALES = (2, 3, 4)
NOISES = (2.55,)
KERNEL_SETS = ("anisotropic", "all", "random")
PAPER = {"avg/noise2.55/virnet": {"kernel_mse": 0.89e-5}}  # Table 9, DIV2K20, the 4 anisotropic kernels
CONSTANT_DRAWS = 2048  # kernels drawn from the training distribution to fit the best constant
CONSTANT_SEED = 0
MIN_LAMBDA2 = 1e-12  # HR pixels²: stands in for a zero λ² in log errors
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
INTERVAL = 0.95


def add_arguments(parser) -> None:
    protocol.add_common_arguments(
        parser, NAME, baseline_choices=("delta", "constant"), default_baselines=("delta", "constant"),
        pseudo_methods=("ground-truth",),
    )
    parser.add_argument("--scale", type=int, choices=SCALES, default=4, help="SR factor (default 4)")
    parser.add_argument("--noises", nargs="+", type=float, default=list(NOISES), help="noise stds in /255 units")
    parser.add_argument("--kernels", choices=KERNEL_SETS, default="anisotropic", help="which kernels (see above)")
    parser.add_argument("--per-image", type=int, default=8, metavar="N", help="random kernels per image (--kernels random)")


@cache
def best_constant_lambda(scale: int, size: int = KERNEL_SIZE, draws: int = CONSTANT_DRAWS) -> torch.Tensor:
    """Λ (3,) of the constant kernel with the least mean squared error to `draws` kernels of
    the training distribution (`sample_kernel_lambdas`, seed CONSTANT_SEED); fitted by Adam
    on (log λ1², log λ2², atanh ρ) from the mean Λ of the draws."""
    truth = sample_kernel_lambdas(draws, scale, torch.Generator().manual_seed(CONSTANT_SEED))
    kernels = gaussian_kernel(truth[:, :2], truth[:, 2], size)
    start = truth.mean(dim=0)
    free = torch.cat([start[:2].log(), start[2:].atanh()]).requires_grad_()
    optimizer = torch.optim.Adam([free], lr=0.05)
    for _ in range(300):
        kernel = gaussian_kernel(free[None, :2].exp(), free[None, 2].tanh(), size)
        loss = (kernel - kernels).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return torch.cat([free[:2].exp(), free[2:].tanh()]).float()


def _kernel_output(lam: torch.Tensor) -> protocol.Output:
    return protocol.Output(kernel=gaussian_kernel(lam[None, :2], lam[None, 2], KERNEL_SIZE)[0], kernel_params=lam)


def delta(case: protocol.Case) -> protocol.Output:
    """The no-blur kernel: 1 at the centre of the K×K grid (Λ = 0)."""
    kernel = torch.zeros(KERNEL_SIZE, KERNEL_SIZE)
    kernel[KERNEL_SIZE // 2, KERNEL_SIZE // 2] = 1.0
    return protocol.Output(kernel=kernel, kernel_params=torch.zeros(3))


def constant_for(scale: int):
    """The best constant kernel over the training distribution of ×`scale` (`best_constant_lambda`)."""
    return lambda case: _kernel_output(best_constant_lambda(scale))


def _photo_index(images: list[str]) -> torch.Tensor:
    """Each case's photo as an index 0..p−1 (n,), the p photos numbered in order of appearance."""
    photo = {name: i for i, name in enumerate(dict.fromkeys(images))}  # name -> its group, built once
    return torch.tensor([photo[name] for name in images])


def _log_errors(
    estimates: torch.Tensor, truths: torch.Tensor, images: list[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(photo index per case: n, log(λ̂²/λ²) per case: n×2, each photo's mean of it: p×2), p
    photos in order of appearance. A zero λ² (the delta kernel) counts as λ² = MIN_LAMBDA2."""
    index = _photo_index(images)
    error = (estimates[:, :2].double().clamp_min(MIN_LAMBDA2) / truths[:, :2].double()).log()
    image_mean = torch.zeros(int(index.max()) + 1, 2, dtype=torch.double).index_add_(0, index, error)
    return index, error, image_mean / torch.bincount(index).double()[:, None]


def image_share(estimates: torch.Tensor, truths: torch.Tensor, images: list[str]) -> dict[str, float]:
    """{"image_share_lambda1", "image_share_lambda2"} (module docstring) of n×3 Λ estimates
    and truths, `images` naming each case's photo; 0 where the log error does not vary."""
    index, error, image_mean = _log_errors(estimates, truths, images)
    shares = {}
    for j, name in enumerate(KERNEL_PARAMETERS[:2]):
        total = error[:, j].var(correction=0)
        shares[f"image_share_{name}"] = float(image_mean[index, j].var(correction=0) / total) if total > 1e-12 else 0.0
    return shares


def sharpness_correlation(
    estimates: torch.Tensor, truths: torch.Tensor, images: list[str], sharpness: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """{"sharpness_r_lambda1", "sharpness_r_lambda2"} (module docstring): Pearson's r over the
    photos between each photo's mean log(λ̂²/λ²) and its own `axis_sharpness` along the same
    axis (x for λ1², y for λ2²); `sharpness` maps each name in `images` to it. 0 where the
    photos' mean errors are all equal."""
    _, _, image_mean = _log_errors(estimates, truths, images)
    own = torch.tensor([sharpness[name] for name in dict.fromkeys(images)], dtype=torch.double)
    return {f"sharpness_r_{name}": pearson(image_mean[:, j], own[:, j]) for j, name in enumerate(KERNEL_PARAMETERS[:2])}


def correlation_intervals(
    estimates: torch.Tensor, truths: torch.Tensor, images: list[str], resamples: int = BOOTSTRAP_RESAMPLES
) -> dict[str, float]:
    """{"r_lambda1_lo", "r_lambda1_hi", ...} (module docstring): the percentile-bootstrap
    INTERVAL of each r of `kernel_correlations` over n×3 Λ estimates and truths, each of
    `resamples` draws taking as many photos as `images` names, with replacement, with all
    their cases. Seeded by BOOTSTRAP_SEED."""
    index = _photo_index(images)
    members = [torch.nonzero(index == p).flatten() for p in range(int(index.max()) + 1)]
    generator = torch.Generator().manual_seed(BOOTSTRAP_SEED)
    draws = []
    for _ in range(resamples):
        picked = torch.randint(len(members), (len(members),), generator=generator).tolist()
        cases = torch.cat([members[p] for p in picked])
        draws.append(list(kernel_correlations(estimates[cases], truths[cases]).values()))
    draws = torch.tensor(draws, dtype=torch.double)
    tail = (1 - INTERVAL) / 2
    bounds = {"lo": draws.quantile(tail, dim=0), "hi": draws.quantile(1 - tail, dim=0)}
    return {
        f"r_{name}_{end}": float(bound[j]) for j, name in enumerate(KERNEL_PARAMETERS) for end, bound in bounds.items()
    }


def metrics(output: protocol.Output, case: protocol.Case) -> dict:
    errors = (output.kernel_params - case.kernel_params).abs()
    return {"kernel_mse": kernel_mse(output.kernel, case.kernel)} | {
        f"err_{name}": float(errors[j]) for j, name in enumerate(KERNEL_PARAMETERS)
    }


def kernel_settings(args, images) -> list[tuple[str, list[tuple[str, torch.Tensor]], torch.Tensor]]:
    """[(kernel label, images, Λ (3,))]: each fixed kernel with all images, or for "random"
    each image with its own --per-image kernels."""
    if args.kernels == "random":
        if args.per_image < 1:
            raise ValueError(f"--per-image must be a positive number of kernels, got {args.per_image}")
        lambdas = sample_kernel_lambdas(len(images) * args.per_image, args.scale, torch.Generator().manual_seed(args.seed))
        return [("random", [images[i // args.per_image]], lam) for i, lam in enumerate(lambdas)]
    chosen = ANISOTROPIC if args.kernels == "anisotropic" else slice(None)
    return list(zip(BENCHMARK_KERNEL_NAMES[chosen], [images] * 7, benchmark_kernel_lambdas(args.scale)[chosen]))


def score_noise(
    args, images, methods: dict, noise: float, sharpness: dict[str, tuple[float, float]]
) -> tuple[list[dict], list]:
    """Rows per kernel (fixed kernel sets) and "avg" per method, and the figure rows;
    `sharpness` maps each image's name to its `axis_sharpness`."""
    per_method = {label: {"values": [], "estimates": [], "truths": [], "images": [], "seconds": 0.0} for label in methods}
    kernel_rows, figure = [], []
    for index, (label, kernel_images, lam) in enumerate(kernel_settings(args, images)):
        kernel = gaussian_kernel(lam[None, :2], lam[None, 2], KERNEL_SIZE)[0]
        cases = [replace(c, kernel_params=lam) for c in sr_cases(kernel_images, args.scale, kernel, noise, args.seed + index)]
        outputs = {}
        for method, run in methods.items():
            record, values = per_method[method], []
            for case in cases:
                began = time.perf_counter()
                output = run(case)
                record["seconds"] += time.perf_counter() - began
                values.append(metrics(output, case))
                record["estimates"].append(output.kernel_params)
                record["truths"].append(lam)
                record["images"].append(case.name)
                outputs.setdefault(method, output)
            record["values"] += values
            if label != "random":
                setting = f"{label}/noise{noise:g}"
                row = {"key": f"{setting}/{method}", "setting": setting, "method": method, "kernel": label}
                kernel_rows.append({**row, "noise": noise, **protocol.average(values)})
        if label != "random" and noise == args.noises[0]:
            figure.append(kernel_panels(label, kernel, outputs))
    averages = []
    for method, record in per_method.items():
        setting = f"avg/noise{noise:g}"
        estimates, truths = torch.stack(record["estimates"]), torch.stack(record["truths"])
        correlations = kernel_correlations(estimates, truths) | image_share(estimates, truths, record["images"])
        correlations |= correlation_intervals(estimates, truths, record["images"])
        correlations |= sharpness_correlation(estimates, truths, record["images"], sharpness)
        row = {"key": f"{setting}/{method}", "setting": setting, "method": method, "kernel": "avg", "noise": noise}
        seconds = record["seconds"] / len(record["values"])
        averages.append({**row, **protocol.average(record["values"]), **correlations, "seconds": seconds})
    return averages + kernel_rows, figure


def run(args) -> int:
    if any(n < 0 for n in args.noises):
        raise ValueError(f"--noises must be non-negative, got {args.noises}")
    session = protocol.start(args)
    guide = load_for_task(args.model, "sr", args.scale, session.device)
    available = {"delta": delta, "constant": constant_for(args.scale), "ground-truth": protocol.ground_truth}
    methods = {name: available[name] for name in protocol.selected_baselines(session)}
    methods["virnet"] = protocol.model_method(guide)
    constant_lam = ", ".join(f"{v:.3f}" for v in best_constant_lambda(args.scale).tolist())  # fitted once, before timing
    sharpness = {name: axis_sharpness(x) for name, x in session.images}  # once: the HR photos do not change with the noise
    rows, figure = [], []
    for noise in args.noises:
        noise_rows, noise_figure = score_noise(args, session.images, methods, noise, sharpness)
        rows += noise_rows
        figure += noise_figure
    session.out.mkdir(parents=True, exist_ok=True)
    if figure:
        comparison_grid(figure, session.out / "kernels.png")
    averages = [r for r in rows if r["kernel"] == "avg"]
    protocol.level_plot(
        session.out / "kernel_mse_vs_noise.png", averages, {f"avg/noise{n:g}": n for n in args.noises},
        "kernel_mse", "noise σ (/255)",
    )
    session.notes += [
        f"Kernels: {args.kernels}" + (f" ({args.per_image} per image, seed {args.seed})" if args.kernels == "random" else "")
        + "; errors and r on Λ = (λ1², λ2², ρ), r pooled over all cases of a noise level.",
        f"Baseline 'constant': Λ = ({constant_lam}), the best constant kernel for the training distribution.",
        "Paper number: VIRNet on DIV2K20, ×4, noise 2.55, 4 anisotropic kernels (Table 9), not this dataset.",
        f"LR synthesis as in `virnet bench sr` (reflect blur, bicubic ↓{args.scale}, clip, noise, clip).",
        "Figures: kernels.png (true and estimated kernels, first image), kernel_mse_vs_noise.png.",
    ]
    keys = {r["key"] for r in rows}
    paper = {k: v for k, v in PAPER.items() if k in keys} if args.kernels == "anisotropic" and args.scale == 4 else {}
    session.finish(TITLE.format(scale=args.scale), protocol.describe_guide(args.model, guide), rows, paper)
    return 0


def kernel_panels(name: str, kernel: torch.Tensor, outputs: dict) -> list:
    panels = [(f"{name}: true", kernel)]
    return panels + [(label, o.kernel) for label, o in outputs.items() if label != "ground-truth"]


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "kernel_estimation", argv)


if __name__ == "__main__":
    sys.exit(main())
