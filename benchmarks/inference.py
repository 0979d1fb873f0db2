"""Inference speed and peak memory of `virnet.api.restore` (Tables 3-5 "runtime" profile).

    python -m benchmarks.inference [--device cpu|cuda] [--repeats 3] [--size 512x512]
                                   [--model NAME|PATH ...] [--paper both|denoise|sr|none]
                                   [--tile N] [--threads N]

Measures the embedded default models (or the --model files instead) and the paper-size
networks with random weights (speed and memory do not depend on the weights): the denoiser
(RNet widths 96-192-288 × 3 blocks) and the ×4 SR model (96-160-224 × 2 blocks). --size is the
output size W×H: SR models read a (W/s)×(H/s) input. The timed call is the whole `restore`
(tiling, kernel image and model check included) after one small warm-up call; the figure is
the mean over --repeats calls.

Peak memory is the extra memory the calls need beyond what was allocated before them:
on CUDA, torch.cuda.max_memory_allocated after resetting its peak; on CPU, the process's peak
resident set size (VmHWM, reset through /proc/self/clear_refs) minus its resident size before
the calls (Linux; elsewhere the lifetime ru_maxrss of resource.getrusage is reported instead,
which includes everything the process ever held).
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from generative.config import denoising_config, sr_config
from guides.guide import VIRNetGuide, paper_guide_config
from virnet.api import restore
from virnet.models import embedded_models, load_model
from virnet.tiled_posterior import DEFAULT_MEMORY_BUDGET, tile_side

PAPER_MODELS = {"denoise": denoising_config(), "sr": sr_config(4)}
WARM_UP_SIDE = 64
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_RESET_PEAK_RSS = "5"
MIB = 2**20


@dataclass(frozen=True)
class Measurement:
    label: str
    parameters: int
    input_size: tuple[int, int]  # (H, W) of the network input
    tile: int
    seconds: float  # mean per image
    peak_bytes: int
    method: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per model (default 3)")
    parser.add_argument("--size", default="512x512", help="output size WxH (default 512x512)")
    parser.add_argument("--model", action="append", metavar="NAME|PATH", help="measure these instead of the defaults")
    parser.add_argument(
        "--paper", choices=tuple(PAPER_MODELS) + ("both", "none"), default="both",
        help="which paper-size random-init models to measure (default both)",
    )
    parser.add_argument("--tile", type=int, help="force this tile side (default: from the memory budget)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    width, height = parse_size(args.size)
    device = torch.device(args.device)
    print(f"device: {device} ({torch.get_num_threads()} CPU threads); output size {width}x{height}; "
          f"repeats {args.repeats}")
    candidates = model_candidates(args.model, args.paper, device)
    for label, build in candidates:
        measurement = measure(label, build(), height, width, args.repeats, args.tile)
        print(format_row(measurement), flush=True)
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


def measure(label: str, guide: VIRNetGuide, height: int, width: int, repeats: int, tile: int | None) -> Measurement:
    """Time `repeats` restore calls of a random W×H (output size) image; record the peak memory."""
    scale = guide.model_config.scale
    parameter = next(guide.parameters())
    device = parameter.device
    size = (max(1, height // scale), max(1, width // scale))
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, guide.model_config.image_channels, *size, generator=generator).to(device)
    restore(image[..., :WARM_UP_SIDE, :WARM_UP_SIDE], guide, tile=tile)
    with peak_memory(device) as peak:
        start = time.perf_counter()
        for _ in range(repeats):
            restore(image, guide, tile=tile)
        _synchronize(device)
        seconds = (time.perf_counter() - start) / repeats
    return Measurement(
        label=label,
        parameters=sum(p.numel() for p in guide.parameters()),
        input_size=size,
        tile=tile_side(guide, tile, DEFAULT_MEMORY_BUDGET),
        seconds=seconds,
        peak_bytes=peak["bytes"],
        method=peak["method"],
    )


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


def format_row(m: Measurement) -> str:
    size = f"{m.input_size[1]}x{m.input_size[0]}"
    return (
        f"{m.label}: {m.parameters / 1e6:.2f}M parameters, input {size}, tile {m.tile}: "
        f"{m.seconds:.3f} s/image, peak memory {m.peak_bytes / MIB:.1f} MiB [{m.method}]"
    )


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


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    sys.exit(main())
