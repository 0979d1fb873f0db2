"""Stochastic variational inference for VIRNet: the training loop (Sec. 4, Eq. 24).

One step: a batch (y, x, ξ, Λ̂) from the data pipeline, the negative ELBO of the Pyro
model and guide (per observed pixel, ``training.elbo``), back-propagation, gradient-norm
clipping per network, Adam, and the learning-rate schedule (linear warm-up, then cosine
annealing to ``lr_min``). Around it: a tqdm bar with the ELBO's terms, a CSV log (and
TensorBoard when installed) with each network's gradient norm and how often it was clipped,
validation on held-out images (``training.validation``: PSNR, noise-level error and, for
SR, the correlation of KNet's estimate with the true kernel), atomic checkpoints,
resumption, a stop with a clear message on a non-finite ELBO, and DistributedDataParallel
under ``torchrun`` (only rank 0 writes).
"""

from __future__ import annotations

import csv
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pyro
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from generative.model import VIRNetModel
from guides.guide import VIRNetGuide
from training import data as datasets
from training.checkpoint import WEIGHTS_FORMAT, capture_rng, restore_rng, save_checkpoint, save_weights
from training.config import TrainConfig, save_config
from training.degradations import DegradationSpec
from training.elbo import TERMS, make_elbo
from training.finetune import init_record, initial_weights
from training.images import find_images, holdout_split
from training.kernel_steps import KernelSteps
from training.resume import cut_log_after, resume_point
from training.validation import kernel_tracking, kernel_validation_set, restoration_scores

NETWORKS = ("snet", "knet", "rnet")
VALIDATION_COLUMNS = ("val_psnr", "val_sigma_error", "val_r_lambda1", "val_r_lambda2", "val_r_rho")
# grad_<net>: the gradient norm before clipping at the logged step; clipped_<net>: the
# fraction of the steps since the previous row in which that network's gradient was clipped.
GRADIENT_COLUMNS = tuple(f"{kind}_{net}" for kind in ("grad", "clipped") for net in NETWORKS)
LOG_COLUMNS = ("step", "loss", *TERMS, "lr", *VALIDATION_COLUMNS, *GRADIENT_COLUMNS, "step_seconds", "data_seconds")


class TrainingDiverged(RuntimeError):
    """The ELBO became NaN or infinite; the message names the step and the term."""


@dataclass(frozen=True)
class TrainResult:
    step: int
    weights: Path
    metrics: dict


def warmup_cosine(step: int, warmup: int, total: int, lr: float, lr_min: float) -> float:
    """Learning-rate factor (w.r.t. ``lr``): linear warm-up, then cosine annealing to lr_min."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return (lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * progress))) / lr


def weights_metadata(
    config: TrainConfig, step: int, metrics: dict, init: dict | None = None, wall_seconds: float | None = None
) -> dict:
    """The JSON that travels with exported weights; ``virnet.api.load_model`` reads it.
    ``init``: the ``training.finetune.init_record`` of the weights the run started from, when any.
    ``wall_seconds``: the run's wall-clock time, summed over its resumes, when known."""
    training = {"preset": config.name, "step": step, "metrics": metrics, "config": config.to_dict()}
    if wall_seconds is not None:
        training["wall_seconds"] = round(wall_seconds, 1)
    if init is not None:
        training["init"], training["init_sha256"] = init["path"], init["sha256"]
    return {
        "format": WEIGHTS_FORMAT,
        "model_config": config.model.to_dict(),
        "guide_config": config.guide.to_dict(),
        "training": training,
    }


def distributed_context() -> tuple[int, int]:
    """(rank, world size) under torchrun, (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def build_objective(config: TrainConfig, device: torch.device, distributed: bool):
    """The guide and the loss module (negative ELBO), wrapped in DDP when distributed."""
    model = VIRNetModel(config.model)
    guide = VIRNetGuide(config.model, config.guide).to(device, memory_format=memory_format(config))
    loss = make_elbo(config.optim.elbo)(model, guide)
    if distributed:
        loss = DistributedDataParallel(loss, device_ids=[device.index] if device.type == "cuda" else None)
    return guide, loss


def memory_format(config: TrainConfig) -> torch.memory_format:
    """optim.channels_last: faster on a CPU for the -cpu presets (benchmarks/inference.py)."""
    return torch.channels_last if config.optim.channels_last else torch.contiguous_format


def batch_arguments(batch: dict, device: torch.device, layout: torch.memory_format = torch.contiguous_format) -> tuple:
    """A data-pipeline batch as the model's arguments (y, x, ξ, Λ̂ or None), images in `layout`,
    followed by KNet's larger patch y_kernel when the batch has one."""
    kernel_params_hat = batch["kernel_params_hat"]
    arguments = (
        batch["y"].to(device, non_blocking=True, memory_format=layout),
        batch["x"].to(device, non_blocking=True, memory_format=layout),
        batch["xi"].to(device, non_blocking=True, memory_format=layout),
        kernel_params_hat.to(device) if kernel_params_hat.shape[-1] else None,
    )
    if "y_kernel" in batch:
        arguments += (batch["y_kernel"].to(device, non_blocking=True, memory_format=layout),)
    return arguments


def clip_per_network(guide: VIRNetGuide, clip: dict) -> dict[str, tuple[float, bool]]:
    """Clip the gradient norm of SNet, KNet and RNet separately (DESIGN.md; a network
    missing from `clip` is not clipped). Returns {network: (norm before clipping, clipped)}."""
    norms = {}
    for name in NETWORKS:
        network = getattr(guide, name, None)
        if network is None:
            continue
        max_norm = clip.get(name, math.inf)
        norm = float(torch.nn.utils.clip_grad_norm_(network.parameters(), max_norm))
        norms[name] = (norm, norm > max_norm)
    return norms


def first_bad_term(loss: torch.Tensor, terms: dict) -> str | None:
    """The name of the first non-finite ELBO term, or None if the loss is finite."""
    if torch.isfinite(loss):
        return None
    for name in TERMS:
        if not torch.isfinite(terms[name]):
            return name
    return "loss"


def make_datasets(config: TrainConfig, data_dir: Path):
    """(training dataset, validation batch or None, kernel validation cases) for the
    configured data kind; the kernel cases are empty except for synthetic SR data."""
    data = config.data
    synthetic = data.kind == "synthetic"
    kernel_patch = data.kernel_patch_size if config.model.has_kernel and data.kernel_patch_size != data.patch_size else None
    spec = DegradationSpec.from_model_config(
        config.model,
        data.patch_size,
        **({"noise": data.noise, "min_sigma": data.min_sigma, "max_sigma": data.max_sigma} if synthetic else {}),
        **({"kernel_patch_size": kernel_patch} if kernel_patch else {}),
    )
    seed = config.run.seed
    if synthetic:
        train_paths, val_paths = holdout_split(find_images(data_dir), data.holdout, seed)
        length = max(len(train_paths), data.batch_size * 100)
        train = datasets.SyntheticDegradation(train_paths, spec, length=length, seed=seed)
        val = datasets.validation_batch(val_paths, spec, data.val_images, seed) if data.val_images else None
        kernels = kernel_validation_set(val_paths, spec, data.val_kernels, seed) if config.model.has_kernel else []
        return train, val, kernels
    if data.kind == "paired":
        train = datasets.PairedImages(data_dir / "noisy", data_dir / "clean", spec, seed=seed)
    else:
        train = datasets.PairedImages.from_sidd_medium(data_dir, spec, seed=seed, cache=False)
    return train, None, []


def validation_metrics(guide: VIRNetGuide, batch: dict | None, kernels: list, device: torch.device) -> dict:
    """The VALIDATION_COLUMNS this run can fill (training.validation)."""
    metrics = restoration_scores(guide, batch, device) if batch is not None else {}
    if kernels:
        metrics.update({f"val_{k}": v for k, v in kernel_tracking(guide, kernels, device).items()})
    return metrics


class MetricsLog:
    """metrics.csv (and TensorBoard when installed), written by rank 0 only.

    Rows are only ever appended. Resuming from step s first cuts the file after its last row
    of a step ≤ s: later rows (and a line torn by a kill) record work that is lost with the
    process and done again; the rows up to s stay byte for byte, under their own header.
    """

    def __init__(self, out: Path, resume_step: int):
        self.path = out / "metrics.csv"
        self.columns = LOG_COLUMNS
        if resume_step and self.path.exists() and self.path.stat().st_size:
            self.columns = cut_log_after(self.path, resume_step)
        else:
            with self.path.open("w", newline="") as f:
                csv.DictWriter(f, LOG_COLUMNS).writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(out / "tensorboard", purge_step=resume_step + 1 if resume_step else None)
        except ImportError:
            self.tensorboard = None

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step" and value != "":
                    self.tensorboard.add_scalar(key, value, row["step"])


def train(
    config: TrainConfig,
    data_dir: Path,
    out: Path,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    objective=build_objective,
    init: Path | None = None,
    grow_rnet_blocks: int | None = None,
) -> TrainResult:
    """Run SVI as ``config`` says; returns the final step and the exported weights' path.

    ``objective(config, device, distributed) -> (guide, loss module)`` builds what is
    optimised (default: VIRNet's guide and negative ELBO); the loss module takes the model's
    arguments and exposes the last terms as ``.elbo.terms``. The ablation benchmark passes
    other backbones and the plain MSE loss here.

    ``out`` receives config.toml, metrics.csv, checkpoints/ and model.safetensors (+ .json),
    only once the data, the objective and the checkpoint to resume have been set up, so a
    refused run changes nothing. With ``resume`` the newest checkpoint in ``out/checkpoints``
    that reads back completely is continued with the same step counter, learning-rate
    schedule, optimizer and RNG states (a UserWarning says so when newer ones could not be
    read); with none readable, ValueError names what was found.
    ``init``: a model file to fine-tune (``training.finetune``): the guide starts from its
    weights and takes its architecture; the optimizer starts fresh. A checkpoint found
    with ``resume`` takes precedence. ``grow_rnet_blocks``: with ``init``, RNet grown to
    that many residual blocks per stage, the new ones starting as the identity.
    """
    started = time.monotonic()
    init_state, started_from = None, None
    if init is not None:
        config, init_state = initial_weights(config, init, grow_rnet_blocks)
        started_from = init_record(init)
    rank, world = distributed_context()
    distributed = world > 1
    device = torch.device(device)
    if distributed:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    pyro.enable_validation(False)
    torch.manual_seed(config.run.seed)
    is_writer = rank == 0
    checkpoints = out / "checkpoints"

    guide, loss_module = objective(config, device, distributed)
    layout = memory_format(config)
    elbo = (loss_module.module if distributed else loss_module).elbo
    optim = config.optim
    optimizer = torch.optim.Adam(guide.parameters(), lr=optim.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, optim.warmup_steps, optim.steps, optim.lr, optim.lr_min)
    )
    step, metrics, earlier_seconds = 0, {}, 0.0
    found = None
    if resume:
        point = resume_point(checkpoints, config, device)
        if is_writer and point.skipped:
            skipped = "; ".join(point.skipped)
            warnings.warn(f"resuming from {point.path.name}; newer, unreadable: {skipped}", stacklevel=2)
        found, state = point.path, point.state
        guide.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"])
        step, metrics = state["step"], state["metrics"]
        earlier_seconds = state.get("wall_seconds", 0.0)  # absent in checkpoints written before it was recorded
        started_from = state.get("init", started_from)  # as the run first found them
    elif init_state is not None:
        guide.load_state_dict(init_state)

    train_set, val_batch, val_kernels = make_datasets(config, data_dir)
    loader = datasets.make_loader(
        train_set, config.data.batch_size // world, config.data.workers, config.run.seed + step, distributed
    )
    log = None
    if is_writer:  # everything is set up: only now does the run folder change
        checkpoints.mkdir(parents=True, exist_ok=True)
        log = MetricsLog(out, step)
        save_config(config, out / "config.toml")
    kernel_steps = None
    if optim.knet_steps and config.model.has_kernel:
        kernel_steps = KernelSteps(
            guide, optimizer, train_set, config.data.batch_size // world, config.data.workers,
            config.run.seed + 1 + step, optim.knet_steps, optim.clip.get("knet", math.inf), device, distributed,
        )
    bar = tqdm(total=optim.steps, initial=step, disable=not (progress and is_writer), dynamic_ncols=True)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=optim.amp)
    last_checkpoint = found

    def wall_seconds() -> float:
        return earlier_seconds + time.monotonic() - started

    def checkpoint() -> Path:
        state = {
            "model": guide.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": capture_rng(),
            "config": config.to_dict(),
            "metrics": metrics,
            "wall_seconds": wall_seconds(),
            "init": started_from,
        }
        return save_checkpoint(checkpoints, step, state, keep=config.run.keep_checkpoints)

    epoch, last_val = 0, {}
    clipped_since_row = {name: 0 for name in NETWORKS}
    steps_since_row = 0
    try:
        while step < optim.steps:
            if distributed:
                loader.sampler.set_epoch(epoch)
            fetch_start = time.perf_counter()
            for batch in loader:
                data_seconds = time.perf_counter() - fetch_start
                with autocast:
                    loss = loss_module(*batch_arguments(batch, device, layout))
                bad = first_bad_term(loss.detach(), elbo.terms)
                if bad is not None:
                    where = f"; the last good checkpoint is {last_checkpoint}" if last_checkpoint else ""
                    raise TrainingDiverged(f"step {step + 1}: the ELBO term {bad!r} is not finite{where}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norms = clip_per_network(guide, optim.clip)
                optimizer.step()
                if kernel_steps is not None:
                    kernel_steps()
                scheduler.step()
                step += 1
                steps_since_row += 1
                for name, (_, clipped) in norms.items():
                    clipped_since_row[name] += clipped
                step_seconds = time.perf_counter() - fetch_start
                metrics = {"loss": loss.item(), **{k: v.item() for k, v in elbo.terms.items()}}
                has_validation = val_batch is not None or val_kernels
                validate = has_validation and (step % config.run.val_every == 0 or step == optim.steps)
                if is_writer and validate:
                    last_val = validation_metrics(guide, val_batch, val_kernels, device)
                    metrics.update(last_val)
                if is_writer and (step % config.run.log_every == 0 or validate):
                    gradients = {f"grad_{name}": norm for name, (norm, _) in norms.items()}
                    gradients.update({f"clipped_{name}": clipped_since_row[name] / steps_since_row for name in norms})
                    clipped_since_row = {name: 0 for name in NETWORKS}
                    steps_since_row = 0
                    row = {"step": step, "lr": scheduler.get_last_lr()[0], **dict.fromkeys(VALIDATION_COLUMNS, ""), **metrics}
                    log.write({**row, **gradients, "step_seconds": step_seconds, "data_seconds": data_seconds})
                if is_writer:
                    bar.update(1)
                    bar.set_postfix(_postfix({**metrics, **last_val}), refresh=False)
                    if step % config.run.checkpoint_every == 0 or step == optim.steps:
                        last_checkpoint = checkpoint()
                if step >= optim.steps:
                    break
                fetch_start = time.perf_counter()
            epoch += 1
    finally:
        bar.close()
        if distributed:
            dist.destroy_process_group()

    weights = out / "model.safetensors"
    if is_writer:
        save_weights(weights, guide.state_dict(), weights_metadata(config, step, metrics, started_from, wall_seconds()))
    return TrainResult(step=step, weights=weights, metrics=metrics)


def _postfix(metrics: dict) -> dict:
    short = {"loss": "loss", "likelihood": "lik", "kl_z": "klz", "kl_sigma2": "kls2", "kl_kernel": "klk", "val_psnr": "psnr", "val_r_rho": "r_rho"}
    return {short[k]: f"{v:.4g}" for k, v in metrics.items() if k in short}
