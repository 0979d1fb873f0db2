"""Tables 7-8 idea: how well is the noise level estimated? σ̂ = √β (SNet) against the truth.

    virnet bench noise-estimation --data DIR [--model NAME|PATH] ...
    python -m benchmarks.noise_estimation (same arguments)

Settings: AWGN σ = 15, 25, 50 and the non-i.i.d. Cases 1-3 of Table 1, synthesised exactly as
in denoise-iid / denoise-niid. Estimators: VIRNet's σ map √β (channels averaged), and
skimage.restoration.estimate_sigma (wavelet MAD, one σ per image, i.i.d. assumption).
Columns (all in /255 units): sigma_true and sigma_est, the image means of the true and the
estimated σ; mean_error = |mean σ̂ − mean σ|; map_error = mean over pixels of |σ̂ − σ| (a
scalar estimate counts as a constant map).
"""

from __future__ import annotations

import sys

import torch

from benchmarks import protocol
from benchmarks.baselines import estimate_sigma_skimage
from benchmarks.cases import TABLE1_CASES
from benchmarks.denoise_iid import SIGMAS
from benchmarks.denoise_niid import MAP_SEED, case_sigma
from benchmarks.metrics import sigma_error
from virnet.api import load_for_task

NAME = "noise-estimation"
TITLE = "noise-level estimation, AWGN and non-i.i.d. Cases 1-3 (Tables 7-8 idea)"
FIGURE_SETTINGS = ("sigma25", "case1", "case2", "case3")


def add_arguments(parser) -> None:
    protocol.add_common_arguments(
        parser, NAME, baseline_choices=("skimage",), default_baselines=("skimage",), pseudo_methods=("ground-truth",)
    )


def skimage_sigma(case: protocol.Case) -> protocol.Output:
    """estimate_sigma of the noisy image, as a constant 1×h×w map."""
    return protocol.Output(sigma=torch.full_like(case.sigma, estimate_sigma_skimage(case.y)))


def metrics(output: protocol.Output, case: protocol.Case) -> dict:
    true_mean, estimated_mean = float(case.sigma.mean()), float(output.sigma.mean())
    return {
        "sigma_true": true_mean * 255,
        "sigma_est": estimated_mean * 255,
        "mean_error": abs(estimated_mean - true_mean) * 255,
        "map_error": sigma_error(output.sigma, case.sigma),
    }


def run(args) -> int:
    session = protocol.start(args)
    guide = load_for_task(args.model, "denoise", None, session.device)
    available = {"skimage": skimage_sigma, "ground-truth": protocol.ground_truth}
    methods = {name: available[name] for name in protocol.selected_baselines(session)}
    methods["virnet"] = protocol.model_method(guide)
    settings = [(f"sigma{s}", protocol.noisy_cases(session.images, iid_sigma(s), args.seed)) for s in SIGMAS]
    settings += [(f"case{c}", protocol.noisy_cases(session.images, case_sigma(c), args.seed)) for c in TABLE1_CASES]
    rows, figure = [], []
    for key, cases in settings:
        setting_rows, outputs = protocol.score_setting(key, cases, methods, metrics)
        rows += setting_rows
        if key in FIGURE_SETTINGS:
            figure.append(sigma_panels(key, cases[0], outputs))
    session.out.mkdir(parents=True, exist_ok=True)
    protocol.comparison_figure(session.out / "comparison.png", figure)
    awgn = [r for r in rows if r["setting"].startswith("sigma")]
    protocol.level_plot(
        session.out / "sigma_vs_noise.png", awgn, {f"sigma{s}": s for s in SIGMAS}, "sigma_est", "true σ (/255)"
    )
    session.notes += [
        "The paper reports no direct σ error: Tables 7-8 score FFDNet given VIRNet's σ (CBSD68).",
        f"Noise as in denoise-iid / denoise-niid: default_rng({args.seed}) per setting; "
        f"Case maps from default_rng({MAP_SEED}).",
        "Figures: comparison.png (σ = 25 and Cases 1-3: true σ, VIRNet's σ map, its |error|), "
        "sigma_vs_noise.png (AWGN).",
    ]
    session.finish(TITLE, protocol.describe_guide(args.model, guide), rows, {})
    return 0


def iid_sigma(level: float):
    return lambda height, width: torch.full((1, height, width), level / 255)


def sigma_panels(setting: str, case: protocol.Case, outputs: dict) -> list:
    """Noisy input, true σ, VIRNet's σ map and its absolute error (the other estimators
    give one σ per image, read in the table)."""
    estimate = outputs["virnet"].sigma
    return [
        (f"{setting}: noisy", case.y),
        ("true σ", case.sigma),
        ("σ virnet", estimate),
        ("|σ̂ − σ| virnet", (estimate - case.sigma).abs()),
    ]


def main(argv=None) -> int:
    return protocol.main(add_arguments, run, "noise_estimation", argv)


if __name__ == "__main__":
    sys.exit(main())
