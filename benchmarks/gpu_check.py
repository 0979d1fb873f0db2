"""One prepared GPU check: everything that needs CUDA, in one command, into one JSON file.

    python -m benchmarks.gpu_check [--out gpu-check.json] [--steps 300] [--device cuda]
                                   [--presets P ...] [--stages pytest training inference compile ddp]

On a CUDA machine, in order (the JSON is rewritten after each stage, so a run cut short keeps
what it finished; the defaults take about 5-8 minutes on one recent GPU):
1. `pytest -m gpu`: the CUDA tests (training loop, model loading, tiled restore, ...);
2. --steps SVI steps of each --presets (denoise-niid-paper, sr-x4-paper) with
   `training.loop.train`, in fp32 and in bf16 autocast (optim.amp), the warm-up shortened to a
   tenth of the steps so that the learning rate reaches its value: the loss must stay finite
   and fall (the mean of the last tenth of the logged losses below that of the first tenth),
   and the steps/s (from the median logged step time) are recorded; the training images are
   scikit-image's bundled photos in four orientations, written to a temporary folder;
3. `benchmarks.inference` on the device: fp32 and bf16, the NCHW comparison, the 12-MP
   restore and the presets' training step times; then again with torch.compile (its error
   is recorded if it does not work);
4. one 2-process DistributedDataParallel run (torchrun, 5 steps) when two GPUs exist.
Without CUDA it prints "no CUDA device: ..." , writes the JSON with every stage skipped and
exits 0. --device cpu runs the stages on the CPU instead (for testing this script; pass
small --presets and --steps); --stages runs only some of them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import skimage.data
import torch

from benchmarks import inference
from training.config import load_config
from training.loop import TrainingDiverged, train

DEFAULT_PRESETS = ("denoise-niid-paper", "sr-x4-paper")
STAGES = ("pytest", "training", "inference", "compile", "ddp")
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
PYTEST_TIMEOUT = 240
DDP_TIMEOUT = 180
DDP_STEPS = 5
REPO = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="JSON to write (default gpu-check.json)")
    parser.add_argument("--steps", type=int, default=300, help="SVI steps per preset and precision (default 300)")
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS), help="training presets to run")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu to test this script")
    parser.add_argument("--inference-size", default="1024x1024", help="output size of the inference benchmark")
    parser.add_argument("--large", default="4000x3000", help="large restore of the inference benchmark, or none")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="what to run (default all)")
    parser.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="training config overrides")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    device = torch.device(args.device)
    report = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "command": " ".join(sys.argv), "stages": {}}
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: the GPU checks are skipped (run this on a machine with a CUDA GPU)")
        report["stages"] = {name: "skipped: no CUDA device" for name in args.stages}
        _write(args.out, report, started)
        return 0
    report["device"] = inference.describe(device)
    stages = report["stages"]
    with tempfile.TemporaryDirectory(prefix="virnet-gpu-check-") as scratch:
        scratch = Path(scratch)
        data = write_training_photos(scratch / "photos")
        if "pytest" in args.stages:
            stages["pytest"] = pytest_gpu() if device.type == "cuda" else "skipped: not on CUDA"
            _write(args.out, report, started)
        if "training" in args.stages:
            stages["training"] = []
            for preset in args.presets:
                for amp in (False, True):
                    check = training_check(preset, data, scratch / "runs", device, args.steps, amp, args.set)
                    stages["training"].append(check)
                    _write(args.out, report, started)
        for name in ("inference", "compile"):
            if name in args.stages:
                stages[name] = inference_check(device, args, scratch, compile_networks=name == "compile")
                _write(args.out, report, started)
        if "ddp" in args.stages:
            two_gpus = device.type == "cuda" and torch.cuda.device_count() >= 2
            stages["ddp"] = ddp_check(args.presets[0], data, scratch / "ddp") if two_gpus else "skipped: fewer than 2 GPUs"
    _write(args.out, report, started)
    failed = _failures(stages)
    print(f"GPU check done in {time.perf_counter() - started:.0f} s: "
          + ("all stages passed" if not failed else "FAILED: " + ", ".join(failed)) + f"; wrote {args.out}")
    return 0 if not failed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def write_training_photos(folder: Path) -> Path:
    """scikit-image's bundled RGB photos, each in four orientations, as PNGs in `folder`."""
    folder.mkdir(parents=True)
    for name in SAMPLE_PHOTOS:
        photo = getattr(skimage.data, name)()
        for turns in range(4):
            iio.imwrite(folder / f"{name}-{turns}.png", np.ascontiguousarray(np.rot90(photo, turns)))
    return folder


def pytest_gpu() -> dict:
    """`pytest -m gpu` in a subprocess: exit status and the summary line."""
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"]
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=PYTEST_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"passed": False, "summary": f"timed out after {PYTEST_TIMEOUT} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    print(f"pytest -m gpu: {lines[-1] if lines else done.returncode}", flush=True)
    return {"passed": done.returncode == 0, "returncode": done.returncode, "summary": lines[-1] if lines else "",
            "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))]}


def training_check(
    preset: str, data: Path, runs: Path, device: torch.device, steps: int, amp: bool, extra: list[str] = ()
) -> dict:
    """`steps` SVI steps of `preset` (with `extra` overrides): finite, falling loss and steps/s,
    from its metrics.csv."""
    label = f"{preset} {'bf16' if amp else 'fp32'}"
    out = runs / label.replace(" ", "-")
    log_every = max(1, steps // 30)
    overrides = [f"optim.steps={steps}", f"optim.warmup_steps={max(1, steps // 10)}", f"optim.amp={str(amp).lower()}",
                 f"run.log_every={log_every}",
                 f"run.val_every={steps}", f"run.checkpoint_every={steps}", "data.val_images=2", *extra]
    start = time.perf_counter()
    try:
        train(load_config(preset, overrides), data, out, device=str(device), progress=False)
    except (TrainingDiverged, RuntimeError, ValueError) as error:
        return {"run": label, "passed": False, "error": " ".join(str(error).split())[:500]}
    wall = time.perf_counter() - start
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    tenth = max(1, len(losses) // 10)
    first, last = statistics.mean(losses[:tenth]), statistics.mean(losses[-tenth:])
    step_seconds = statistics.median(float(r["step_seconds"]) for r in rows[1:] or rows)
    result = {
        "run": label, "steps": steps, "wall_seconds": wall, "steps_per_second": 1 / step_seconds,
        "first_loss": first, "last_loss": last, "finite": all(math.isfinite(v) for v in losses),
        "falling": last < first, "val_psnr": next((float(r["val_psnr"]) for r in reversed(rows) if r["val_psnr"]), None),
    }
    result["passed"] = result["finite"] and result["falling"]
    print(f"train {label}: loss {first:.4g} -> {last:.4g}, {result['steps_per_second']:.2f} steps/s, "
          f"{'ok' if result['passed'] else 'FAILED'}", flush=True)
    return result


def inference_check(device: torch.device, args: argparse.Namespace, scratch: Path, compile_networks: bool) -> dict:
    """benchmarks.inference on the device (fp32 and bf16); with compile_networks, fp32 compiled."""
    path = scratch / ("inference-compile.json" if compile_networks else "inference.json")
    common = ["--device", str(device), "--size", args.inference_size, "--json", str(path)]
    if compile_networks:
        argv = [*common, "--compile", "--precision", "fp32", "--large", "none", "--train", "none"]
    else:
        argv = [*common, "--precision", "fp32", "bf16", "--nchw", "--bf16-quality", "--large", args.large,
                "--train", *args.presets]
    try:
        inference.main(argv)
    except Exception as error:  # torch.compile may not work on a machine; record why
        return {"passed": False, "error": f"{type(error).__name__}: {' '.join(str(error).split())[:500]}"}
    return {"passed": True, **json.loads(path.read_text())}


def ddp_check(preset: str, data: Path, out: Path) -> dict:
    """DDP_STEPS steps of `preset` under torchrun with 2 processes, one GPU each."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training",
               "--config", preset, "--data", str(data), "--device", "cuda", "--out", str(out), "--steps", str(DDP_STEPS),
               "--no-progress", "run.log_every=1", "data.val_images=2"]
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=DDP_TIMEOUT,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired:
        return {"passed": False, "error": f"timed out after {DDP_TIMEOUT} s"}
    logged = (out / "metrics.csv").is_file() and len((out / "metrics.csv").read_text().splitlines()) > 1
    return {"passed": done.returncode == 0 and logged, "returncode": done.returncode, "stderr": done.stderr[-2000:]}


def _failures(stages: dict) -> list[str]:
    failed = []
    for name, stage in stages.items():
        for item in stage if isinstance(stage, list) else [stage]:
            if isinstance(item, dict) and not item.get("passed", True):
                failed.append(item.get("run", name))
    return failed


def _write(path: Path, report: dict, started: float) -> None:
    report["seconds"] = time.perf_counter() - started
    path.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
