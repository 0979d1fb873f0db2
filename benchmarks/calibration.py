"""Are the error bars right? Calibration of VIRNet's q(σ²|y) and q(Λ|y) against known truths.

    virnet bench calibration --data DIR [--model NAME|PATH ...] [--tasks denoise sr] ...
    python -m benchmarks.calibration (same arguments)

Degradations with a known truth: for denoising, Table 1's Cases 1-3 and AWGN 15/25/50 (as in
denoise-niid / denoise-iid); for SR, the 7 test kernels × noise 0.1/2.55/7.65 (as in `virnet
bench sr`, clipping included) at the scale of each SR model. Each law is scored by the PIT of
the truth, the coverage of its central 50/90/95 % credible intervals and their width
(benchmarks/coverage.py). Targets: "sigma2-pixel" (every pixel's σ²_i), "sigma2-image" (one
σ² per image, for i.i.d. noise), and for SR "lambda2_1", "lambda2_2", "rho" (the true Λ).

σ² laws (all IG; the shape is α0 − 1 except for the oracle):
- virnet: q(σ²|y) = IG(α0 − 1, α0 β), read from a Pyro trace of the guide (Eq. 13);
- prior: the model's p(σ²|ξ) = IG(α0 − 1, α0 ξ), ξ from the clean image (Eqs. 4-5), read from
  a trace of the model: the guide if SNet returned ξ exactly, i.e. what the fixed shape costs;
- oracle: the exact posterior p(σ²|y, x) = IG(α0 − 1 + n/2, α0 ξ + ½Σr²) (generative/conjugate.py);
- mad: IG(α0 − 1, α0 σ̂²), σ̂ skimage's wavelet estimate for the image (a trivial baseline).
Per image: IG(α0 − 1, b̄) with b̄ the geometric mean of the rates over the image (how SR's
SNet makes one β per image); the oracle pools all residuals of the image into one update.
Kernel laws: virnet, q(λ²_l|y) = IG(κ0 − 1, κ0 η_l) and q(ρ|y) = N(m, r0²) (Eq. 14);
training-law, the law of Λ under the training sampler (Eq. 27), which ignores y.
"""

from __future__ import annotations

import itertools
import sys

import pyro
import torch
from pyro import poutine

from benchmarks import protocol
from benchmarks.baselines import estimate_sigma_skimage
from benchmarks.cases import BENCHMARK_KERNEL_NAMES, TABLE1_CASES, benchmark_kernel_lambdas
from benchmarks.coverage import (
    EmpiricalLaw,
    InverseGammaLaw,
    NormalLaw,
    Tally,
    pit_and_width,
    pit_histograms,
    reliability_diagram,
)
from benchmarks.denoise_iid import SIGMAS
from benchmarks.denoise_niid import case_sigma
from benchmarks.sr import KERNEL_SIZE, NOISES, SCALES, sr_cases
from generative.config import TASKS
from generative.conjugate import sigma2_posterior
from generative.kernels import gaussian_kernel
from generative.model import VIRNetModel
from generative.operators import degrade
from generative.variance_prior import variance_prior_estimate
from guides.guide import VIRNetGuide
from training.degradations import sample_kernel_lambdas
from virnet.api import load_for_task
from virnet.models import embedded_models
from virnet.tiled_posterior import tiled_posterior

NAME = "calibration"
TITLE = "calibration of the σ² and kernel posteriors: coverage and PIT"
SIGMA2_METHODS = ("virnet", "prior", "oracle", "mad")
KERNEL_METHODS = ("virnet", "training-law")
KERNEL_TARGETS = ("lambda2_1", "lambda2_2", "rho")
TRAINING_DRAWS = 100_000  # draws of the training kernel sampler behind "training-law"
TRAINING_SEED = 0
POOLED = "all"


def add_arguments(parser) -> None:
    protocol.add_common_arguments(parser, NAME, models="many", pseudo_methods=())
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="what to score (default both)")
    parser.add_argument("--sigmas", nargs="+", type=float, default=list(SIGMAS), help="AWGN stds in /255 units")
    parser.add_argument("--noises", nargs="+", type=float, default=list(NOISES), help="SR noise stds in /255 units")


def guides_for(args, device) -> dict[tuple[str, int], tuple[str | None, VIRNetGuide]]:
    """{(task, scale): (spec, guide)} from --model (each file says its task and scale) or the
    embedded defaults, restricted to --tasks."""
    found = {}
    if args.model:
        for spec in args.model:
            guide = load_for_task(spec, None, None, device)
            key = (guide.model_config.task, guide.model_config.scale)
            if key in found:
                raise ValueError(f"two models for the same task: {found[key][0]} and {spec}")
            found[key] = (spec, guide)
    else:
        names = embedded_models()
        found[("denoise", 1)] = (None, load_for_task(None, "denoise", None, device))
        found |= {("sr", s): (None, load_for_task(f"sr-x{s}", "sr", s, device)) for s in SCALES if f"sr-x{s}" in names}
    chosen = {key: value for key, value in found.items() if key[0] in args.tasks}
    if not chosen:
        raise ValueError(f"no model for the tasks {', '.join(args.tasks)}")
    return chosen


def guide_laws(guide: VIRNetGuide, y: torch.Tensor) -> dict:
    """The guide's laws for y (1×C×h×w), read from a Pyro trace of `VIRNetGuide.draw`."""
    with torch.no_grad(), pyro.validation_enabled(False):
        post = tiled_posterior(guide, y)
        trace = poutine.trace(guide.draw).get_trace(post, y)
    sigma2 = trace.nodes["sigma2"]["fn"].base_dist
    laws = {"sigma2": InverseGammaLaw(sigma2.concentration, sigma2.rate)}
    if guide.model_config.has_kernel:
        widths, rho = trace.nodes["lambda2"]["fn"].base_dist, trace.nodes["rho"]["fn"]
        for index, target in enumerate(KERNEL_TARGETS[:2]):
            laws[target] = InverseGammaLaw(widths.concentration[0, index], widths.rate[0, index])
        laws["rho"] = NormalLaw(rho.loc[0], rho.scale[0])
    return laws


def sigma2_laws(guide: VIRNetGuide, case: protocol.Case, hx: torch.Tensor, kernel_params_hat, virnet) -> dict[str, tuple]:
    """{method: (per-pixel law, per-image law)} of σ² for one case; hx: 1×C×h×w = Hx;
    kernel_params_hat: 1×3 true Λ (SR) or None; virnet: the guide's σ² law (`guide_laws`)."""
    cfg = guide.model_config
    y, x = case.y[None].to(hx), case.x[None].to(hx)
    xi = variance_prior_estimate(y, hx, cfg.window, cfg.sigma_channels)
    with torch.no_grad(), pyro.validation_enabled(False):
        trace = poutine.trace(VIRNetModel(cfg)).get_trace(y, x, xi, kernel_params_hat)
    prior = trace.nodes["sigma2"]["fn"].base_dist
    shape, rate = prior.concentration, prior.rate
    mad = InverseGammaLaw(shape, torch.full_like(rate, cfg.alpha0 * estimate_sigma_skimage(case.y) ** 2))
    pixel = {"virnet": virnet, "prior": InverseGammaLaw(shape, rate),
             "oracle": InverseGammaLaw(*sigma2_posterior(shape, rate, y, hx)), "mad": mad}
    laws = {method: (law, _per_image(law)) for method, law in pixel.items()}
    pooled = sigma2_posterior(shape[..., :1, :1, :1], rate.mean().view(1, 1, 1, 1), y.reshape(1, -1, 1, 1),
                              hx.reshape(1, -1, 1, 1))
    laws["oracle"] = (laws["oracle"][0], InverseGammaLaw(*pooled))
    return laws


def score_sigma2(tallies: dict, keys: list[tuple], laws: dict, case: protocol.Case, iid: bool) -> None:
    """Add one case's σ² PITs to the tallies of every (task, setting) in `keys`."""
    truth = case.sigma.to(torch.float64)[None] ** 2  # 1×1×h×w
    for method, (pixel, image) in laws.items():
        scored = {"sigma2-pixel": pit_and_width(pixel, truth.to(pixel.rate.device), relative=True)}
        if iid:
            scored["sigma2-image"] = pit_and_width(image, truth.mean().to(image.rate.device), relative=True)
        for (task, setting), (target, values) in itertools.product(keys, scored.items()):
            _tally(tallies, task, setting, target, method).add(*values)


def denoising(session, guide: VIRNetGuide, tallies: dict) -> None:
    args = session.args
    settings = [(f"case{c}", case_sigma(c), False) for c in TABLE1_CASES]
    settings += [(f"sigma{s:g}", _constant_sigma(s / 255), True) for s in args.sigmas]
    for setting, sigma_map, iid in settings:
        for case in protocol.noisy_cases(session.images, sigma_map, args.seed):
            hx = case.x[None].to(session.device)
            virnet = guide_laws(guide, case.y[None].to(session.device))["sigma2"]
            keys = [("denoise", setting), ("denoise", POOLED)]
            score_sigma2(tallies, keys, sigma2_laws(guide, case, hx, None, virnet), case, iid)


def super_resolution(session, guide: VIRNetGuide, tallies: dict) -> None:
    args, scale = session.args, guide.model_config.scale
    task = f"x{scale}"
    lambdas = benchmark_kernel_lambdas(scale)
    kernels = gaussian_kernel(lambdas[:, :2], lambdas[:, 2], KERNEL_SIZE)
    generator = torch.Generator().manual_seed(TRAINING_SEED)
    training = sample_kernel_lambdas(TRAINING_DRAWS, scale, generator=generator)
    training_laws = {target: EmpiricalLaw(training[:, index]) for index, target in enumerate(KERNEL_TARGETS)}
    for noise in args.noises:
        for name, kernel, truth in zip(BENCHMARK_KERNEL_NAMES, kernels, lambdas):
            kernel_params_hat = truth[None].to(session.device)
            keys = [(task, f"noise{noise:g}"), (task, name), (task, POOLED)]
            for case in sr_cases(session.images, scale, kernel, noise, args.seed):
                x = case.x[None].to(session.device)
                hx = degrade(x, kernel[None].to(x), scale, guide.model_config.downsampler)
                laws = guide_laws(guide, case.y[None].to(session.device))
                score_sigma2(tallies, keys, sigma2_laws(guide, case, hx, kernel_params_hat, laws["sigma2"]), case, iid=True)
                for index, target in enumerate(KERNEL_TARGETS):
                    for method, law in (("virnet", laws[target]), ("training-law", training_laws[target])):
                        values = pit_and_width(law, truth[index], relative=target != "rho")
                        for key in keys:
                            _tally(tallies, *key, target, method).add(*values)


def run(args) -> int:
    if any(s <= 0 for s in args.sigmas) or any(n <= 0 for n in args.noises):
        raise ValueError("--sigmas and --noises must be positive (a zero noise has no variance to cover)")
    session = protocol.start(args)
    guides = guides_for(args, session.device)
    tallies: dict[tuple, Tally] = {}
    for (task, _), (_, guide) in guides.items():
        (denoising if task == "denoise" else super_resolution)(session, guide, tallies)
    tallies = {key: tallies[key] for key in sorted(tallies, key=_row_order(tallies))}
    rows = [{"key": "/".join(key), "task": key[0], "setting": key[1], "target": key[2], "method": key[3],
             **tally.columns()} for key, tally in tallies.items()]
    session.out.mkdir(parents=True, exist_ok=True)
    panels = figure_panels(tallies)
    reliability_diagram(panels, session.out / "reliability.png")
    pit_histograms(panels, session.out / "pit_histograms.png")
    session.notes += notes(args)
    model = "; ".join(protocol.describe_guide(spec, guide) for spec, guide in guides.values())
    session.finish(TITLE, model, rows, {})
    return 0


def figure_panels(tallies: dict) -> dict[str, dict[str, Tally]]:
    """Panels of both figures: denoising σ² per pixel for each setting and per image pooled;
    for each SR scale, σ² per image and each Λ component, pooled over kernels and noises."""
    groups = {}
    for task, setting, target, method in tallies:
        pooled_sr = task != "denoise" and setting == POOLED and target != "sigma2-pixel"
        per_setting = task == "denoise" and (target == "sigma2-pixel") == (setting != POOLED)
        if pooled_sr or per_setting:
            title = f"{task} {setting}: {target}" if task == "denoise" else f"{task}: {target}"
            groups.setdefault(title, {})[method] = tallies[(task, setting, target, method)]
    return groups


def notes(args) -> list[str]:
    return [
        "Nobody has published these numbers (not the paper, not the public code): no paper column.",
        "Columns: n = scored values (pixels, or images × settings); covNN = fraction of truths inside the central "
        "NN % credible interval (NN/100 when calibrated); below90/above90 = truth under/over the 90 % interval "
        "(0.05 each when calibrated); pit_mean = mean PIT (0.5 when calibrated; above: the law sits too low); "
        "width90 = mean width of the 90 % interval, relative to the truth for σ² and λ², absolute for ρ.",
        "Methods: virnet = the guide's law; prior = IG(α0 − 1, α0 ξ), ξ from the clean image (the fixed shape with "
        "a perfect β); oracle = the exact conjugate posterior given the clean image; mad = IG(α0 − 1, α0 σ̂²) with "
        "skimage's estimate_sigma; training-law = Λ under the training kernel sampler, ignoring y "
        f"({TRAINING_DRAWS} draws, seed {TRAINING_SEED}).",
        "Per image (i.i.d. noise): the image's rates reduced to their geometric mean; the oracle pools every residual "
        "of the image into one conjugate update, so it is a calibrated posterior up to the clipping of SR inputs.",
        f"Degradations as in denoise-niid / denoise-iid / sr (noise default_rng({args.seed})); SR inputs are clipped "
        "to [0, 1], which the model does not describe (it matters only near black and white pixels).",
        "Draws of z are not scored: q(z|y) = N(µ, ε0²) has the fixed std ε0 (1e-3 for denoising), far below the "
        "error of µ, so z intervals cover the clean image almost never (notebook 05).",
        "Figures: reliability.png (coverage against nominal level), pit_histograms.png (PIT densities).",
    ]


def _row_order(tallies: dict):
    """Sort key of the rows: task, then settings as first met with the pooled one last, target, method."""
    first = {part: index for index, part in reversed(list(enumerate(p for key in tallies for p in key)))}
    return lambda key: (first[key[0]], key[1] == POOLED, first[key[1]], first[key[2]], first[key[3]])


def _tally(tallies: dict, task: str, setting: str, target: str, method: str) -> Tally:
    return tallies.setdefault((task, setting, target, method), Tally())


def _per_image(law: InverseGammaLaw) -> InverseGammaLaw:
    """One IG per image: the shape (constant) and the geometric mean of the rates."""
    shape = torch.as_tensor(law.shape).double().mean()
    return InverseGammaLaw(shape, torch.as_tensor(law.rate).double().log().mean().exp())


def _constant_sigma(sigma: float):
    return lambda height, width: torch.full((1, height, width), sigma)


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "calibration", argv)


if __name__ == "__main__":
    sys.exit(main())
