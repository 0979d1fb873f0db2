"""The SVI loop: the loss goes down, checkpoints survive SIGKILL, NaNs stop the run, DDP is exact."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pyro
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from tests.helpers import sigkill_once_written, synthetic_batch
from training import loop
from training.checkpoint import latest_checkpoint, load_checkpoint, load_weights
from training.config import load_config
from training.loop import TrainingDiverged, build_objective, train, warmup_cosine

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "guide.snet_features=8",
    "guide.snet_depth=3",
    "guide.knet_features=8",
    "guide.knet_blocks=1",
    "guide.rnet_widths=[8, 16]",
    "guide.rnet_blocks=1",
    "data.patch_size=32",
    "data.batch_size=4",
    "data.workers=0",
    "data.val_images=2",
    "data.kernel_patch_size=48",
    "optim.warmup_steps=2",
    "optim.lr=3e-3",
    "run.log_every=1",
    "run.val_every=5",
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Ten smooth random colour images, 48×48, in a folder."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(10):
        coarse = rng.random((6, 6, 3))
        image = np.kron(coarse, np.ones((8, 8, 1)))
        iio.imwrite(folder / f"img{i}.png", (image * 255).astype(np.uint8))
    return folder


def read_log(out: Path) -> list[dict]:
    with (out / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_learning_rate_warms_up_then_anneals_to_the_minimum():
    factors = [warmup_cosine(s, 10, 100, 1e-3, 1e-5) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert warmup_cosine(100, 10, 100, 1e-3, 1e-5) * 1e-3 == pytest.approx(1e-5)


@pytest.mark.parametrize("preset", ["denoise-niid-cpu", "sr-x2-cpu"])
def test_training_lowers_the_loss_and_writes_log_checkpoints_and_weights(photos, tmp_path, preset):
    config = load_config(preset, TINY + ["optim.steps=40", "run.checkpoint_every=20"])
    result = train(config, photos, tmp_path, progress=False)
    rows = read_log(tmp_path)
    losses = [float(r["loss"]) for r in rows]
    assert result.step == 40 and len(rows) == 40
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10])
    assert any(r["val_psnr"] for r in rows) and any(r["val_sigma_error"] for r in rows)
    assert all(float(r["grad_rnet"]) > 0 and 0 <= float(r["clipped_rnet"]) <= 1 for r in rows)
    assert any(r["val_r_rho"] for r in rows) == config.model.has_kernel, "KNet's correlations, for SR"
    assert latest_checkpoint(tmp_path / "checkpoints").name == "ckpt_00000040.safetensors"
    state, metadata = load_weights(result.weights)
    assert metadata["model_config"]["task"] == config.model.task
    assert metadata["training"]["step"] == 40
    assert (tmp_path / "config.toml").exists()


def test_channels_last_trains_the_same_run(photos, tmp_path):
    runs = {}
    for layout in ("false", "true"):
        config = load_config("sr-x2-cpu", TINY + ["optim.steps=5", f"optim.channels_last={layout}"])
        train(config, photos, tmp_path / layout, progress=False)
        runs[layout] = [float(r["loss"]) for r in read_log(tmp_path / layout)]
    assert runs["true"] == pytest.approx(runs["false"], rel=1e-3)


def test_amp_on_a_cpu_runs_the_svi_step_in_bfloat16(photos, tmp_path):
    runs = {}
    for amp in ("false", "true"):
        config = load_config("sr-x2-cpu", TINY + ["optim.steps=5", f"optim.amp={amp}"])
        train(config, photos, tmp_path / amp, progress=False)
        runs[amp] = [float(r["loss"]) for r in read_log(tmp_path / amp)]
    assert runs["true"] != runs["false"], "bf16 rounding changes the losses: autocast was on"
    assert runs["true"] == pytest.approx(runs["false"], rel=0.05), "the same run, to bf16 precision"
def test_clipping_is_per_network_and_reports_the_norm_before_clipping():
    config = load_config("sr-x2-cpu", TINY)
    guide, loss = build_objective(config, torch.device("cpu"), distributed=False)
    loss(*synthetic_batch(config.model, size=32)).backward()
    before = {n: torch.cat([p.grad.flatten() for p in getattr(guide, n).parameters()]).norm().item() for n in loop.NETWORKS}
    norms = loop.clip_per_network(guide, {"rnet": 1e-3, "knet": 1e9})
    assert norms["rnet"] == (pytest.approx(before["rnet"], rel=1e-4), True)
    assert norms["knet"] == (pytest.approx(before["knet"], rel=1e-4), False)
    assert norms["snet"] == (pytest.approx(before["snet"], rel=1e-4), False), "a network without a threshold is not clipped"
    after = torch.cat([p.grad.flatten() for p in guide.rnet.parameters()]).norm().item()
    assert after == pytest.approx(1e-3, rel=1e-3)


def test_a_run_killed_mid_way_resumes_to_the_same_step_count(photos, tmp_path):
    steps, every = 40, 5
    command = [sys.executable, "-m", "training", "--config", "denoise-niid-cpu", "--data", str(photos)]
    command += ["--out", str(tmp_path), "--steps", str(steps), "--no-progress", *TINY, f"run.checkpoint_every={every}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    sigkill_once_written(command, tmp_path / "checkpoints" / "ckpt_00000015.json", REPO, env)
    reached = max(int(r["step"]) for r in read_log(tmp_path))
    kept = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))["step"]
    assert 15 <= kept < steps, "killed mid-way, after a checkpoint"
    assert reached - kept <= every, "at most one checkpoint interval of work is lost"

    resumed = subprocess.run(command + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_log(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1)), "one row per step, none twice"
    assert load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))["step"] == steps
    assert load_weights(tmp_path / "model.safetensors")[1]["training"]["step"] == steps


def test_the_wall_time_is_summed_over_resumes(photos, tmp_path, monkeypatch):
    def clock(start, later):  # time.monotonic: `start` at the run's first reading, `later` after it
        readings = iter([start])
        return lambda: next(readings, later)

    monkeypatch.setattr(loop.time, "monotonic", clock(100.0, 107.0))
    train(load_config("denoise-niid-cpu", TINY + ["optim.steps=5"]), photos, tmp_path, progress=False)
    assert load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))["wall_seconds"] == 7.0
    monkeypatch.setattr(loop.time, "monotonic", clock(1000.0, 1003.0))
    result = train(load_config("denoise-niid-cpu", TINY + ["optim.steps=10"]), photos, tmp_path, resume=True, progress=False)
    assert load_weights(result.weights)[1]["training"]["wall_seconds"] == 10.0


def test_a_non_finite_elbo_stops_with_the_step_and_term_and_keeps_the_last_good_checkpoint(
    photos, tmp_path, monkeypatch
):
    real_arguments = loop.batch_arguments
    calls = {"n": 0}

    def poisoned(batch, device, layout):
        calls["n"] += 1
        y, x, xi, kernel_params_hat = real_arguments(batch, device, layout)
        if calls["n"] == 8:
            xi = torch.full_like(xi, float("nan"))
        return y, x, xi, kernel_params_hat

    monkeypatch.setattr(loop, "batch_arguments", poisoned)
    config = load_config("denoise-niid-cpu", TINY + ["optim.steps=20", "run.checkpoint_every=5"])
    with pytest.raises(TrainingDiverged, match=r"step 8: the ELBO term 'kl_sigma2' is not finite.*ckpt_00000005"):
        train(config, photos, tmp_path, progress=False)
    good = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))
    assert good["step"] == 5
    assert all(torch.isfinite(t).all() for t in good["model"].values())
    assert not (tmp_path / "model.safetensors").exists()


def test_an_empty_data_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    config = load_config("denoise-niid-cpu", TINY)
    with pytest.raises(ValueError, match="no images"):
        train(config, tmp_path / "empty", tmp_path / "out", progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(args, start, stop):
    return [a[start:stop] if a is not None else None for a in args]


def _ddp_rank(rank, world, port, config, args, state, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    guide, loss = build_objective(config, torch.device("cpu"), distributed=True)
    guide.load_state_dict(state)
    share = args[0].shape[0] // world
    pyro.set_rng_seed(123)
    loss(*_rows(args, rank * share, (rank + 1) * share)).backward()
    if rank == 0:
        save_file({n: p.grad.contiguous() for n, p in guide.named_parameters()}, out)
    dist.barrier()  # no rank tears gloo down while its peer still talks to it
    del guide, loss  # DDP's reducer goes before the process group it holds
    dist.destroy_process_group()


@pytest.mark.parametrize("preset", ["denoise-niid-cpu", "sr-x2-cpu"])
def test_two_process_ddp_gradients_equal_one_process_on_the_combined_batch(tmp_path, preset):
    """Each rank draws its half's samples with seed 123; one process does the same half by half."""
    config = load_config(preset, TINY)
    args = synthetic_batch(config.model, batch=4, size=16 * config.model.scale)
    guide, loss = build_objective(config, torch.device("cpu"), distributed=False)
    state = {k: v.clone() for k, v in guide.state_dict().items()}
    out = tmp_path / "ddp.safetensors"
    mp.spawn(_ddp_rank, args=(2, _free_port(), config, args, state, str(out)), nprocs=2, join=True)
    for half in range(2):
        pyro.set_rng_seed(123)
        (loss(*_rows(args, half * 2, half * 2 + 2)) / 2).backward()
    ddp = load_file(out)
    for name, parameter in guide.named_parameters():
        assert torch.allclose(ddp[name], parameter.grad, rtol=1e-4, atol=1e-7), name


@pytest.mark.gpu
@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16"])
def test_training_on_cuda_lowers_the_loss_and_exports_weights(photos, tmp_path, amp):
    config = load_config("sr-x2-cpu", TINY + ["optim.steps=40", "run.checkpoint_every=20", f"optim.amp={str(amp).lower()}"])
    result = train(config, photos, tmp_path, device="cuda", progress=False)
    losses = [float(r["loss"]) for r in read_log(tmp_path)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10])
    state, _ = load_weights(result.weights)
    assert all(t.device.type == "cpu" for t in state.values())  # weights are saved device-free
