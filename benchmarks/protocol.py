"""What the benchmark protocols share: options, test images, models, scoring, figures, reports.

A protocol module (benchmarks/denoise_niid.py, ...) defines NAME, TITLE, ``add_arguments``
and ``run``; it is reachable as ``virnet bench NAME`` (cli/bench.py) and as
``python -m benchmarks.<module>`` (``main`` here). Every run:

1. ``start(args)``: refuses to overwrite an existing result.json without --overwrite, picks
   the images (--quick: two small skimage samples; --data DIR, recursively; --holdout: only
   the validation split ``holdout_split(find_images(DIR), 0.1, seed=0)[1]``; --limit N: the
   first N), and the device;
2. builds ``Case``s (clean x, degraded y, true σ map, true kernel) per setting and scores
   ``Method``s on them (``score_setting``): every method sees every case;
3. ``Session.finish``: result.json + report.md (benchmarks/report.py) with the dataset, image
   count, model, device, seed and the full command line, and the paper's numbers.

Images are float32 tensors in [0, 1]: x 3×H×W, y 3×h×w (h = H/s for SR), σ maps 1×h×w.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks import baselines
from benchmarks.quick_images import quick_images
from benchmarks.report import BenchmarkReport, comparison_grid, line_plot, write_report
from guides.guide import VIRNetGuide, upsample_nearest
from training.images import find_images, holdout_split, read_image
from virnet.api import restore
from virnet.devices import resolve_device
from virnet.errors import EXIT_FAILED, error_line
from virnet.models import default_model_name

DEFAULT_SEED = 1000
RESULTS_DIR = Path("bench-results")
QUICK_COUNT = 2
QUICK_SIZE = 48
HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 0
PSEUDO_METHODS = ("identity", "ground-truth")
FIGURE_CROP = 128  # side of the zoomed centre crop in comparison figures


@dataclass(frozen=True)
class Case:
    """One test input. x: 3×H×W clean (HR) image; y: 3×h×w degraded image; sigma: 1×h×w true
    noise std (None when unknown); kernel: K×K true blur kernel (SR; None otherwise);
    kernel_params: its Λ = (λ1², λ2², ρ), shape 3 (where the protocol knows it)."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    sigma: torch.Tensor | None = None
    kernel: torch.Tensor | None = None
    kernel_params: torch.Tensor | None = None


@dataclass(frozen=True)
class Output:
    """What a method returns for a case: image 3×H×W, estimated σ map 1×h×w, kernel K×K and
    its Λ = (λ1², λ2², ρ) (shape 3)."""

    image: torch.Tensor | None = None
    sigma: torch.Tensor | None = None
    kernel: torch.Tensor | None = None
    kernel_params: torch.Tensor | None = None


Method = Callable[[Case], Output]
Metrics = Callable[[Output, Case], dict]


@dataclass
class Session:
    """One benchmark run: its arguments, output folder, images and device."""

    args: argparse.Namespace
    name: str
    out: Path
    dataset: str
    images: list[tuple[str, torch.Tensor]]
    device: torch.device
    notes: list[str] = field(default_factory=list)

    def finish(self, title: str, model: str, rows: list[dict], paper: dict) -> dict[str, Path]:
        """Write result.json and report.md; returns their paths (benchmarks.report.write_report)."""
        report = BenchmarkReport(
            name=f"{self.name}: {title}",
            dataset=self.dataset,
            image_count=len(self.images),
            model=model,
            device=describe_device(self.device),
            seed=self.args.seed,
            command=command_line(self.args),
            rows=rows,
            paper=paper,
            notes=self.notes,
        )
        paths = write_report(report, self.out)
        print(f"wrote {paths['markdown']} and {paths['json']}")
        return paths


def add_common_arguments(
    parser: argparse.ArgumentParser,
    name: str,
    *,
    data: bool = True,
    models: str = "one",
    baseline_choices: Sequence[str] = (),
    default_baselines: Sequence[str] = (),
    pseudo_methods: Sequence[str] = PSEUDO_METHODS,
    holdout: bool = True,
) -> None:
    """The options every protocol shares. models: "one" (--model), "many" (--model A B ...,
    one per SR scale) or "none". --baselines accepts baseline_choices and the sanity-check
    pseudo_methods ("identity": the degraded input; "ground-truth": the truth itself).
    holdout: offer --holdout (with data)."""
    parser.set_defaults(bench_name=name, bench_parser=parser)
    if data:
        parser.add_argument("--data", type=Path, metavar="DIR", help="test images (searched recursively)")
        parser.add_argument("--limit", type=int, metavar="N", help="use the first N images only")
    if data and holdout:
        parser.add_argument(
            "--holdout", action="store_true",
            help="use only the validation split holdout_split(find_images(DIR), 0.1, seed=0)[1]",
        )
    if models == "one":
        parser.add_argument("--model", metavar="NAME|PATH", help="embedded model name or .safetensors file")
    elif models == "many":
        parser.add_argument("--model", nargs="+", metavar="NAME|PATH", help="models, at most one per scale")
    parser.add_argument("--out", type=Path, metavar="DIR", help=f"output folder (default {RESULTS_DIR}/{name})")
    parser.add_argument("--quick", action="store_true", help="two small built-in images, end to end in seconds")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"noise seed (default {DEFAULT_SEED})")
    if baseline_choices or pseudo_methods:
        choices = (*baseline_choices, *pseudo_methods)
        parser.add_argument(
            "--baselines", nargs="*", choices=choices, default=list(default_baselines), metavar="NAME",
            help=f"from {', '.join(choices)} (default: {' '.join(default_baselines) or 'none'})",
        )
    if "bm3d" in baseline_choices:
        parser.add_argument("--no-bm3d", action="store_true", help="skip BM3D (slow on large images)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing result.json")


def main(add_arguments: Callable, run: Callable, module: str, argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.<module>`: parse, run, and turn bad input into one error line."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError) as error:  # VirnetError included
        print(error_line(error), file=sys.stderr)
        return EXIT_FAILED


def start(args: argparse.Namespace, select: Callable | None = None) -> Session:
    """Check the arguments and the output folder, load the images, pick the device.
    select(args) -> (dataset description, [(name, image)]); default `select_images`."""
    name = args.bench_name
    out = args.out or RESULTS_DIR / (f"{name}-quick" if args.quick else name)
    if (out / "result.json").exists() and not args.overwrite:
        raise ValueError(f"{out / 'result.json'} exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} is not a folder")
    device = resolve_device(args.device)
    if not hasattr(args, "data"):
        return Session(args, name, out, "none (synthetic inputs)", [], device)
    dataset, images = (select or select_images)(args)
    return Session(args, name, out, dataset, images, device)


def select_images(args: argparse.Namespace, holdout: bool | None = None) -> tuple[str, list[tuple[str, torch.Tensor]]]:
    """(description, [(name, 3×H×W float32 in [0, 1])]) as --quick/--data/--holdout/--limit say
    (holdout: use the held-out split or not, whatever --holdout says)."""
    holdout = getattr(args, "holdout", False) if holdout is None else holdout
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of images, got {args.limit}")
    if args.quick:
        if args.data is not None or getattr(args, "holdout", False):
            raise ValueError("--quick uses built-in sample images; drop --data/--holdout")
        images = quick_images(QUICK_COUNT, QUICK_SIZE)[: args.limit]
        names = ", ".join(n for n, _ in images)
        return f"quick: skimage samples {names} at {QUICK_SIZE}×{QUICK_SIZE} (not a benchmark set)", images
    if args.data is None:
        raise ValueError("--data DIR is required (or --quick)")
    paths = find_images(args.data)
    description = f"{args.data} ({len(paths)} images)"
    if holdout:
        paths = holdout_split(paths, HOLDOUT_FRACTION, seed=HOLDOUT_SEED)[1]
        description = (
            f"{args.data}, held-out split holdout_split(find_images(DIR), {HOLDOUT_FRACTION}, "
            f"seed={HOLDOUT_SEED})[1]: {len(paths)} images"
        )
    if args.limit is not None:
        paths = paths[: args.limit]
        description += f", first {len(paths)}"
    return description, [(p.stem, to_unit(read_image(p))) for p in paths]


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8/uint16 3×H×W -> float32 in [0, 1]."""
    top = 255.0 if pixels.dtype == torch.uint8 else 65535.0
    return pixels.float() / top


def command_line(args: argparse.Namespace) -> str:
    """The run's full command line, every option with its effective value."""
    words = ["virnet", "bench", args.bench_name]
    for action in args.bench_parser._actions:
        if not action.option_strings or action.default == argparse.SUPPRESS:
            continue
        option, value = max(action.option_strings, key=len), getattr(args, action.dest)
        if action.nargs == 0:
            words += [option] if value != action.default else []
        elif isinstance(value, (list, tuple)):
            words += [option, *map(str, value)]
        elif value is not None:
            words += [option, str(value)]
    return shlex.join(words)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)}), torch {torch.__version__}"
    return f"cpu ({torch.get_num_threads()} threads), torch {torch.__version__}"


def describe_guide(spec: str | None, guide: VIRNetGuide) -> str:
    """"<--model or the embedded default's name> (<task>, <parameters>)"."""
    cfg = guide.model_config
    kind = "denoising" if cfg.task == "denoise" else f"×{cfg.scale} SR"
    source = spec if spec is not None else f"embedded default {default_model_name(cfg.task, cfg.scale)!r}"
    parameters = sum(p.numel() for p in guide.parameters()) / 1e6
    return f"{source} ({kind}, {parameters:.2f}M parameters)"


def gaussian_noise(shape: Sequence[int], rng: np.random.Generator) -> torch.Tensor:
    """N(0, 1) float32 noise of `shape` (C×H×W order) from a numpy generator."""
    return torch.from_numpy(rng.standard_normal(tuple(shape))).float()


def noisy_cases(images, sigma_map: Callable[[int, int], torch.Tensor], seed: int) -> list[Case]:
    """y = x + N(0,1)·σ (same σ on all channels, no clipping) for each image in order, the
    noise drawn from one numpy default_rng(seed). sigma_map(H, W) -> 1×H×W σ."""
    rng = np.random.default_rng(seed)
    cases = []
    for name, x in images:
        sigma = sigma_map(*x.shape[-2:])
        cases.append(Case(name, x, x + gaussian_noise(x.shape, rng) * sigma, sigma))
    return cases


def selected_baselines(session: Session) -> list[str]:
    """--baselines minus BM3D when --no-bm3d or when the optional package is missing (noted)."""
    names = list(dict.fromkeys(session.args.baselines))
    if "bm3d" in names and getattr(session.args, "no_bm3d", False):
        names.remove("bm3d")
    elif "bm3d" in names and not baselines.bm3d_available():
        names.remove("bm3d")
        session.notes.append(
            "BM3D skipped: the optional 'bm3d' package is not installed (pip install virnet-pyro[bench])."
        )
    return names


# Methods: each maps a Case to an Output (CPU tensors).


def model_method(guide: VIRNetGuide) -> Method:
    """VIRNet (or any guide): µ, σ̂ = √β (channels averaged) and, for SR, the kernel g(Λ)
    with its Λ. Always in float32: restore's "auto" is bf16 on CPUs with native bf16, which
    would make a figure depend on the machine (benchmarks/precision_quality.py compares them)."""

    def run(case: Case) -> Output:
        result = restore(case.y, guide, precision="fp32")
        sigma = result.sigma2_mode[0].mean(dim=0, keepdim=True).sqrt().cpu()
        if result.kernel is None:
            return Output(result.image[0].cpu(), sigma)
        return Output(result.image[0].cpu(), sigma, result.kernel[0].cpu(), result.kernel_params[0].cpu())

    return run


def identity(case: Case) -> Output:
    """The degraded input itself (nearest-neighbour upsampled to the HR size for SR)."""
    scale = case.x.shape[-1] // case.y.shape[-1]
    return Output(upsample_nearest(case.y[None], scale)[0] if scale > 1 else case.y)


def ground_truth(case: Case) -> Output:
    return Output(case.x, case.sigma, case.kernel, case.kernel_params)


def nlm(case: Case) -> Output:
    """Non-local means given the true σ (its mean for a σ map)."""
    return Output(baselines.nlm_denoise(case.y, float(case.sigma.mean())))


def bm3d(case: Case) -> Output:
    """BM3D given the true σ (its mean for a σ map)."""
    return Output(baselines.bm3d_denoise(case.y, float(case.sigma.mean())))


def bicubic(case: Case) -> Output:
    scale = case.x.shape[-1] // case.y.shape[-1]
    return Output(baselines.bicubic_upsample(case.y[None], scale)[0])


BASELINE_METHODS = {"identity": identity, "ground-truth": ground_truth, "nlm": nlm, "bm3d": bm3d, "bicubic": bicubic}


def average(values: list[dict]) -> dict:
    """Column-wise mean of per-image metric dicts; a string cell (e.g. "n/a ...") is kept."""
    out = {}
    for column in values[0]:
        cells = [v[column] for v in values]
        text = next((c for c in cells if isinstance(c, str) or c is None), False)
        out[column] = text if text is not False else float(np.mean(cells))
    return out


def score_setting(
    setting: str, cases: list[Case], methods: dict[str, Method], metrics: Metrics, descriptors: dict | None = None
) -> tuple[list[dict], dict[str, Output]]:
    """Rows "<setting>/<method>" with the mean metrics and seconds per image, and every
    method's output on the first case (for the figures)."""
    rows, first = [], {}
    for label, method in methods.items():
        values, seconds = [], 0.0
        for case in cases:
            began = time.perf_counter()
            output = method(case)
            seconds += time.perf_counter() - began
            values.append(metrics(output, case))
            first.setdefault(label, output)
        row = {"key": f"{setting}/{label}", "setting": setting, "method": label, **(descriptors or {})}
        rows.append({**row, **average(values), "seconds": seconds / len(cases)})
    return rows, first


def figure_row(setting: str, case: Case, outputs: dict[str, Output]) -> list[tuple[str, torch.Tensor]]:
    """Panels of one comparison-figure row: the input, each method's image, the ground
    truth, then the true and estimated σ maps / kernels where there are any."""
    panels = [(f"{setting}: input", identity(case).image)]
    panels += [(label, o.image) for label, o in outputs.items() if label not in PSEUDO_METHODS and o.image is not None]
    panels.append(("ground truth", case.x))
    for attribute, what in (("sigma", "σ"), ("kernel", "kernel")):
        truth = getattr(case, attribute)
        estimates = [(label, getattr(o, attribute)) for label, o in outputs.items() if label not in PSEUDO_METHODS]
        estimates = [(label, e) for label, e in estimates if e is not None and e.numel() > 1]
        if truth is not None and truth.numel() > 1 and estimates:
            panels.append((f"true {what}", truth))
            panels += [(f"{what} {label}", e) for label, e in estimates]
    return panels


def comparison_figure(path: Path, rows: list[list[tuple[str, torch.Tensor]]]) -> Path:
    """comparison_grid zoomed on a centre crop of at most FIGURE_CROP pixels."""
    height, width = rows[0][0][1].shape[-2:]
    side = min(FIGURE_CROP, height, width)
    crop = ((height - side) // 2, (width - side) // 2, side, side)
    return comparison_grid(rows, path, crop=crop)


def level_plot(path: Path, rows: list[dict], levels: dict[str, float], column: str, xlabel: str) -> Path | None:
    """One line per method of `column` against the noise level of each setting (finite
    values only: the ground truth's infinite PSNR is left out). None if nothing to plot."""
    series = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        values = [next((r[column] for r in rows if r["method"] == method and r["setting"] == s), None) for s in levels]
        if all(isinstance(v, float) and math.isfinite(v) for v in values):
            series[method] = values
    if not series:
        return None
    return line_plot(list(levels.values()), series, xlabel, column.upper(), path)
