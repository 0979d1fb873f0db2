"""Inference speed against this machine's convolution floor, peak memory, a 12-megapixel
restore, and seconds per training step (Tables 3-5 "runtime", at the hardware's limit).

    python -m benchmarks.inference [--device cpu|cuda] [--repeats 3] [--size 512x512]
        [--model NAME|PATH ...] [--paper both|denoise|sr|none] [--precision fp32 bf16]
        [--large 4000x3000|none] [--train PRESET ...|none] [--train-steps 3] [--nchw]
        [--bf16-quality] [--compile] [--tile N] [--threads N] [--json PATH]

Floor: the rate of one 3×3 convolution in channels_last, fp32 and bf16 (benchmarks/floor.py),
measured before and after each model on as many FLOPs as the model's restore (the better of
the two counts, so a busy machine lowers the fraction rather than raising it). Models: the embedded defaults (or --model) and
the paper-size networks with random weights; --size is the output size W×H (SR models read
(W/s)×(H/s)). Each timed call is the whole `virnet.api.restore` (tiling, kernel image and
model check included), best of --repeats after a warm-up at the same size, in each
--precision; its floor fraction is (its FLOPs at the conv rate) / its time. The calls are
timed twice: with freed memory kept between calls (`virnet.heap`, as `virnet restore` keeps
it over a folder; the figure the targets use, since the reference convolution reuses its
buffers too), and from a fresh heap each call (one image per process: every page of the
activations is faulted in again). --nchw also times
the same restore with the networks in NCHW. --bf16-quality measures bf16's PSNR change on
the benchmark images (benchmarks/precision_quality.py). Large: one --large restore of the
first model (progress bar on a terminal) against (tiles × one tile's restore time). Train:
seconds per SVI step of each preset in NCHW and channels_last (benchmarks/train_speed.py);
default: the -cpu presets on a CPU, the -paper ones on a GPU.

Peak memory is the extra memory the calls need beyond what was allocated before them: on
CUDA, torch.cuda.max_memory_allocated after resetting its peak; on CPU, the process's peak
resident set size (VmHWM, reset through /proc/self/clear_refs) minus its resident size before
the calls (Linux; elsewhere the lifetime ru_maxrss of resource.getrusage is reported instead,
which includes everything the process ever held). CPU targets (issue 14): paper-size models
≥ 75 % of the floor, shipped ones ≥ 50 %, the large restore ≤ 1.3 × the tile sum and, for the
shipped denoiser, ≤ 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from benchmarks import floor, train_speed
from generative.config import denoising_config, sr_config
from guides.guide import VIRNetGuide, paper_guide_config
from training.config import preset_names
from virnet.api import restore
from virnet.heap import reuse_freed_memory
from virnet.models import embedded_models, load_model
from virnet.precision import PRECISIONS, cpu_flags, native_bf16
from virnet.tiled_posterior import bytes_per_pixel, tile_layout, tile_side, tiled_posterior, traced_bytes_per_pixel

PAPER_MODELS = {"denoise": denoising_config(), "sr": sr_config(4)}
TARGETS = {"paper": 0.75, "shipped": 0.50, "large_ratio": 1.3, "large_peak_gib": 2.0}
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_RESET_PEAK_RSS = "5"
MIB = 2**20
GIB = 2**30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per model, the best counts (default 3)")
    parser.add_argument("--size", default="512x512", help="output size WxH (default 512x512)")
    parser.add_argument("--model", action="append", metavar="NAME|PATH", help="measure these instead of the defaults")
    parser.add_argument(
        "--paper", choices=tuple(PAPER_MODELS) + ("both", "none"), default="both",
        help="which paper-size random-init models to measure (default both)",
    )
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS[:2], help="default: fp32, and bf16 where native")
    parser.add_argument("--large", default="4000x3000", help="size of the large restore of the first model, or none")
    parser.add_argument("--train", nargs="+", metavar="PRESET", help="presets to time a training step of, or none")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per preset and layout")
    parser.add_argument("--nchw", action="store_true", help="also time each restore with the networks in NCHW")
    parser.add_argument("--bf16-quality", action="store_true", help="bf16's PSNR change on the benchmark images")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks first")
    parser.add_argument("--tile", type=int, help="force this tile side (default: from the memory budget)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to this JSON file")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats < 1 or args.train_steps < 1:
        raise ValueError("--repeats and --train-steps must be at least 1")
    width, height = parse_size(args.size)
    device = torch.device(args.device)
    precisions = args.precision or (["fp32", "bf16"] if native_bf16(device) else ["fp32"])
    print(f"device: {describe(device)}; output size {width}x{height}; best of {args.repeats}; "
          f"precisions {', '.join(precisions)}", flush=True)
    report: dict = {"device": describe(device), "size": [width, height], "precisions": precisions}
    report["floor"] = rates = measure_rates(device)
    print(format_rates(rates), flush=True)
    report["models"] = models = []
    guides = []
    for label, build in model_candidates(args.model, args.paper, device):
        guide = build()
        if args.compile:
            compile_networks(guide)
        guides.append((label, guide))
        row = measure_model(label, guide, height, width, args, precisions)
        models.append(row)
        print(format_model(row), flush=True)
    if args.large.lower() != "none" and guides:
        large_w, large_h = parse_size(args.large)
        report["large"] = large = measure_large(*guides[0], large_h, large_w, args.tile, args.repeats)
        print(format_large(large), flush=True)
    report["training"] = training = []
    for name in training_presets(args.train, device):
        row = measure_training(name, device, args.train_steps)
        training.append(row)
        print(format_training(row), flush=True)
    if device.type == "cpu":
        report["targets"] = verdicts = check_targets(report)
        for line in verdicts:
            print(line)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inference", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def parse_size(text: str) -> tuple[int, int]:
    """"WxH" -> (W, H), both positive."""
    match = re.fullmatch(r"(\d+)[xX×](\d+)", text.strip())
    if not match or min(int(match.group(1)), int(match.group(2))) < 1:
        raise ValueError(f"size must look like 512x512 (WxH), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    bf16 = "native bf16" if native_bf16(device) else "no native bf16"
    simd = "AVX512" if "avx512f" in cpu_flags() else "AVX2" if "avx2" in cpu_flags() else "no AVX2"
    return f"cpu ({torch.get_num_threads()} threads, {simd}, {bf16})"


def model_candidates(
    models: list[str] | None, paper: str, device: torch.device
) -> list[tuple[str, Callable[[], VIRNetGuide]]]:
    """(label, builder) of every model to measure; says so when no defaults are shipped.

    paper: "both", "denoise", "sr" or "none", the paper-size random-init models to add.
    """
    names = models if models else embedded_models()
    if not names:
        print("no default weights are shipped yet (virnet/weights/ is empty): "
              + ("nothing else to measure" if paper == "none" else "measuring the paper-size models only"))
    candidates = [(str(name), lambda name=name: load_model(name, device)) for name in names]
    for task, config in PAPER_MODELS.items():
        if paper in (task, "both"):
            label = f"paper {'denoise' if task == 'denoise' else 'sr-x4'} (random init)"
            candidates.append((label, lambda task=task, config=config: _paper_guide(config, task, device)))
    return candidates


def measure_rates(device: torch.device) -> dict:
    """The reference convolution's GFLOP/s in fp32 and bf16 (channels_last)."""
    return {"fp32": floor.conv_rate(device, torch.float32), "bf16": floor.conv_rate(device, torch.bfloat16)}


def measure_model(label: str, guide: VIRNetGuide, height: int, width: int, args, precisions: list[str]) -> dict:
    """Best restore time per precision with its floor fraction, memory, and the extras asked for."""
    device = next(guide.parameters()).device
    scale = guide.model_config.scale
    size = (max(1, height // scale), max(1, width // scale))
    image = torch.rand(1, guide.model_config.image_channels, *size, generator=torch.Generator().manual_seed(0))
    image = image.to(device)
    side = tile_side(guide, args.tile)
    flops = floor.restore_flops(guide, *size, side)
    row = {
        "label": label, "parameters": sum(p.numel() for p in guide.parameters()), "input_size": list(size),
        "tile": side, "gflops": flops / 1e9, "random_init": label.startswith("paper"),
        "traced_bytes_per_pixel": traced_bytes_per_pixel(guide.model_config, guide.guide_config),
        "estimated_bytes_per_pixel": bytes_per_pixel(guide),
    }
    for precision in precisions:
        def call():
            restore(image, guide, tile=args.tile, precision=precision)

        # As many reference FLOPs as the restore does, timed before and after it.
        rate_before = floor.conv_rate(device, _DTYPES[precision], args.repeats, flops)
        with peak_memory(device) as peak:
            fresh = floor.best_seconds(call, args.repeats, device)
        with reuse_freed_memory():
            seconds = floor.best_seconds(call, args.repeats, device)
        rate = max(rate_before, floor.conv_rate(device, _DTYPES[precision], args.repeats, flops))
        row[precision] = {"seconds": seconds, "fresh_heap_seconds": fresh, "conv_gflops": rate,
                          "floor_fraction": floor.floor_fraction(flops, rate, seconds),
                          "fresh_heap_floor_fraction": floor.floor_fraction(flops, rate, fresh),
                          "peak_bytes": peak["bytes"], "peak_method": peak["method"]}
    if args.nchw:
        def nchw():
            with torch.no_grad():
                tiled_posterior(guide, image, tile=args.tile, channels_last=False)
        row["nchw_posterior_seconds"] = floor.best_seconds(nchw, args.repeats, device)
        row["channels_last_posterior_seconds"] = floor.best_seconds(
            lambda: tiled_posterior(guide, image, tile=args.tile), args.repeats, device)
    if args.bf16_quality and not row["random_init"]:
        from benchmarks.precision_quality import bf16_psnr_change

        row["bf16_quality"] = bf16_psnr_change(guide, args.tile)
    return row


def measure_large(label: str, guide: VIRNetGuide, height: int, width: int, tile: int | None, repeats: int) -> dict:
    """One restore of a height×width output against tiles × (one restore of a tile's size)."""
    device = next(guide.parameters()).device
    scale = guide.model_config.scale
    size = (max(1, height // scale), max(1, width // scale))
    (tile_h, rows), (tile_w, cols) = tile_layout(guide, *size, tile)
    tiles = len(rows) * len(cols)
    image = torch.rand(1, guide.model_config.image_channels, *size, generator=torch.Generator().manual_seed(1))
    one = image[..., :tile_h, :tile_w].to(device)
    with reuse_freed_memory():  # as the large restore keeps it from tile to tile
        one_tile = floor.best_seconds(lambda: restore(one, guide, tile=tile), max(1, repeats - 1), device)
    image = image.to(device)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with peak_memory(device) as peak:
        seconds = _timed_once(lambda: restore(image, guide, tile=tile, progress=True), device)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "label": label, "input_size": list(size), "tile": [tile_h, tile_w], "tiles": tiles, "seconds": seconds,
        "one_tile_seconds": one_tile, "ratio_to_tile_sum": seconds / (tiles * one_tile),
        "peak_bytes": peak["bytes"], "peak_method": peak["method"],
        "system_seconds": after.ru_stime - before.ru_stime, "user_seconds": after.ru_utime - before.ru_utime,
        "minor_page_faults": after.ru_minflt - before.ru_minflt,
    }


def training_presets(asked: list[str] | None, device: torch.device) -> list[str]:
    """--train's presets; default: the -cpu presets on a CPU, the -paper ones on a GPU."""
    if asked is not None:
        return [] if [a.lower() for a in asked] == ["none"] else asked
    suffix = "-paper" if device.type == "cuda" else "-cpu"
    return [name for name in preset_names() if name.endswith(suffix)]


def measure_training(name: str, device: torch.device, steps: int) -> dict:
    """Seconds per step of preset `name` in NCHW and channels_last, interleaved twice, best of each."""
    config = train_speed.preset_config(name)
    best = {"nchw": math.inf, "channels_last": math.inf}
    for _ in range(2):
        for layout in best:
            seconds, _ = train_speed.step_seconds(config, device, layout == "channels_last", steps)
            best[layout] = min(best[layout], seconds)
    return {"preset": name, "batch": config.data.batch_size, "patch": config.data.patch_size,
            **{f"{k}_seconds": v for k, v in best.items()}, "channels_last_speedup": best["nchw"] / best["channels_last"]}


def check_targets(report: dict) -> list[str]:
    """One line per CPU target of issue 14: the figure, the target and met / MISSED."""
    lines = []
    for row in report["models"]:
        if "fp32" in row:
            target = TARGETS["paper"] if row["random_init"] else TARGETS["shipped"]
            lines.append(_verdict(f"{row['label']}: floor fraction", row["fp32"]["floor_fraction"], target, at_least=True))
    large = report.get("large")
    if large:
        lines.append(_verdict(f"large restore ({large['label']}): × tile sum", large["ratio_to_tile_sum"],
                              TARGETS["large_ratio"], at_least=False))
        if large["label"] == "denoise":
            lines.append(_verdict("large restore (denoise): peak GiB", large["peak_bytes"] / GIB,
                                  TARGETS["large_peak_gib"], at_least=False))
    return lines


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict]:
    """Yields a dict that holds, on exit, "bytes" (peak extra memory) and "method"."""
    result: dict = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        yield result
        torch.cuda.synchronize(device)
        result.update(bytes=torch.cuda.max_memory_allocated(device) - before, method="cuda max_memory_allocated")
        return
    if _can_reset_peak_rss():
        _CLEAR_REFS.write_text(_RESET_PEAK_RSS)
        before = _status_kib("VmRSS")
        yield result
        result.update(bytes=(_status_kib("VmHWM") - before) * 1024, method="VmHWM - VmRSS before (Linux)")
        return
    yield result
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB elsewhere
    lifetime_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    result.update(bytes=lifetime_peak, method="ru_maxrss (process lifetime)")


def compile_networks(guide: VIRNetGuide) -> None:
    """torch.compile SNet, KNet and RNet in place, with the weights in channels_last."""
    guide.to(memory_format=torch.channels_last)
    for network in (guide.snet, guide.knet, guide.rnet):
        if network is not None:
            network.compile()


def format_rates(rates: dict) -> str:
    features = floor.REFERENCE_FEATURES
    return (f"floor: 3×3 conv {features}→{features} channels_last: fp32 {rates['fp32']:.1f} GFLOP/s, "
            f"bf16 {rates['bf16']:.1f} GFLOP/s (bf16/fp32 = {rates['bf16'] / rates['fp32']:.2f})")


def format_model(row: dict) -> str:
    size = f"{row['input_size'][1]}x{row['input_size'][0]}"
    parts = [f"{row['label']}: {row['parameters'] / 1e6:.2f}M parameters, input {size}, tile {row['tile']}, "
             f"{row['gflops']:.1f} GFLOP"]
    for precision in PRECISIONS[:2]:
        if precision in row:
            m = row[precision]
            parts.append(f"{precision} {m['seconds']:.3f} s/image = {100 * m['floor_fraction']:.0f} % of the floor "
                         f"({m['conv_gflops']:.1f} GFLOP/s); from a fresh heap {m['fresh_heap_seconds']:.3f} s = "
                         f"{100 * m['fresh_heap_floor_fraction']:.0f} %, peak {m['peak_bytes'] / MIB:.1f} MiB")
    parts.append(f"memory per pixel: traced {row['traced_bytes_per_pixel']:.0f} B, "
                 f"estimated {row['estimated_bytes_per_pixel']:.0f} B")
    if "nchw_posterior_seconds" in row:
        speedup = row["nchw_posterior_seconds"] / row["channels_last_posterior_seconds"]
        parts.append(f"posterior NCHW {row['nchw_posterior_seconds']:.3f} s vs channels_last "
                     f"{row['channels_last_posterior_seconds']:.3f} s ({speedup:.2f}×)")
    if "bf16_quality" in row:
        q = row["bf16_quality"]
        parts.append(f"bf16 PSNR change on {q['images']} benchmark images: mean {q['mean_change_db']:+.3f} dB, "
                     f"max |Δ| {q['max_abs_change_db']:.3f} dB (fp32 {q['fp32_psnr']:.2f} dB)")
    return "\n  ".join(parts)


def format_large(m: dict) -> str:
    size = f"{m['input_size'][1]}x{m['input_size'][0]}"
    return (f"large restore {m['label']}, input {size}: {m['tiles']} tiles of {m['tile'][1]}x{m['tile'][0]}: "
            f"{m['seconds']:.1f} s = "
            f"{m['ratio_to_tile_sum']:.2f} × ({m['tiles']} × {m['one_tile_seconds']:.2f} s one tile), "
            f"peak {m['peak_bytes'] / GIB:.2f} GiB [{m['peak_method']}]; user {m['user_seconds']:.1f} s, "
            f"system {m['system_seconds']:.1f} s, {m['minor_page_faults']} minor page faults")


def format_training(row: dict) -> str:
    return (f"training {row['preset']} (batch {row['batch']} × {row['patch']}²): NCHW {row['nchw_seconds']:.3f} s/step, "
            f"channels_last {row['channels_last_seconds']:.3f} s/step ({row['channels_last_speedup']:.2f}×)")


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _verdict(what: str, value: float, target: float, at_least: bool) -> str:
    met = value >= target if at_least else value <= target
    return f"target {what} {value:.2f} {'≥' if at_least else '≤'} {target:.2f}: {'met' if met else 'MISSED'}"


def _timed_once(fn: Callable[[], object], device: torch.device) -> float:
    floor.synchronize(device)
    start = time.perf_counter()
    fn()
    floor.synchronize(device)
    return time.perf_counter() - start


def _paper_guide(config, task: str, device: torch.device) -> VIRNetGuide:
    torch.manual_seed(0)
    return VIRNetGuide(config, paper_guide_config(task)).to(device).eval().requires_grad_(False)


def _can_reset_peak_rss() -> bool:
    if not (_CLEAR_REFS.exists() and _STATUS.exists()):
        return False
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK_RSS)
    except OSError:
        return False
    return True


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{_STATUS} has no {field} line")
    return int(match.group(1))


if __name__ == "__main__":
    sys.exit(main())
