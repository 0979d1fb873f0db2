"""What the denoising protocols share (Tables 1, 2 and 4: denoise_niid, denoise_iid,
denoise_real): the methods scored, PSNR/SSIM, the figures and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.metrics import psnr_rgb, ssim_rgb
from benchmarks.protocol import (
    BASELINE_METHODS,
    Case,
    Method,
    Output,
    Session,
    comparison_figure,
    describe_guide,
    figure_row,
    level_plot,
    model_method,
    score_setting,
    selected_baselines,
)
from guides.guide import VIRNetGuide
from virnet.api import load_for_task


def denoising_metrics(output: Output, case: Case) -> dict:
    """PSNR/SSIM on RGB uint8 (Tables 1, 2, 4)."""
    return {"psnr": psnr_rgb(output.image, case.x), "ssim": ssim_rgb(output.image, case.x)}


def denoising_methods(
    session: Session, guide: VIRNetGuide, mse_guide: VIRNetGuide | None, compare_guide: VIRNetGuide | None = None
) -> dict[str, Method]:
    """Selected baselines, the MSE-trained backbone (--mse-model), the model to compare with
    (--compare-model) and VIRNet, in that order."""
    methods = {name: BASELINE_METHODS[name] for name in selected_baselines(session)}
    if mse_guide is not None:
        methods["mse"] = model_method(mse_guide)
    if compare_guide is not None:
        methods["compare"] = model_method(compare_guide)
    methods["virnet"] = model_method(guide)
    return methods


def add_other_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--mse-model and --compare-model: more denoisers scored on the same noisy images."""
    parser.add_argument(
        "--mse-model", metavar="NAME|PATH",
        help="the same backbone trained with plain MSE (e.g. from `virnet bench ablation`), scored as 'mse'",
    )
    parser.add_argument(
        "--compare-model", metavar="NAME|PATH",
        help="another denoiser (e.g. the previous default's weights) scored beside --model as 'compare'",
    )


def run_denoising(
    session: Session,
    title: str,
    settings: list[tuple[str, float, list[Case]]],
    paper: dict,
    xlabel: str | None,
    model: str | None = None,
) -> dict[str, Path]:
    """Score the denoisers on every (setting key, noise level, cases), draw the figures
    (the PSNR plot over the levels unless xlabel is None) and write the report.
    paper: row key -> published numbers; model: the model when --model is not given."""
    args = session.args
    spec = args.model or model
    guide = load_for_task(spec, "denoise", None, session.device)
    mse_guide = load_for_task(args.mse_model, "denoise", None, session.device) if args.mse_model else None
    compare = args.compare_model
    compare_guide = load_for_task(compare, "denoise", None, session.device) if compare else None
    methods = denoising_methods(session, guide, mse_guide, compare_guide)
    rows, figure = [], []
    for key, _, cases in settings:
        setting_rows, outputs = score_setting(key, cases, methods, denoising_metrics)
        rows += setting_rows
        figure.append(figure_row(key, cases[0], outputs))
    session.out.mkdir(parents=True, exist_ok=True)
    comparison_figure(session.out / "comparison.png", figure)
    figures = "comparison.png (centre crops; σ maps are √β)"
    if xlabel is not None:
        level_plot(session.out / "psnr_vs_noise.png", rows, {k: level for k, level, _ in settings}, "psnr", xlabel)
        figures += ", psnr_vs_noise.png"
    session.notes.append(f"Figures: {figures}.")
    described = describe_guide(spec, guide)
    if mse_guide is not None:
        described += f"; mse: {describe_guide(args.mse_model, mse_guide)}"
    if compare_guide is not None:
        described += f"; compare: {describe_guide(compare, compare_guide)}"
    known = {r["key"] for r in rows}
    return session.finish(title, described, rows, {k: v for k, v in paper.items() if k in known})
