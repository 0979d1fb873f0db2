"""Fault battery, interrupted work: killed training resumes at its last checkpoint, an
interrupted folder restore continues with --skip-existing, a full disk leaves no partial
output, and a fallback to an older checkpoint is said in one line."""

from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from tests.checkpoints import write_tiny_checkpoint
from tests.faults import RUN_EVERY, RUN_STEPS, TINY_TRAIN, leftovers, rgb, small_disk, snapshot
from tests.helpers import sigkill_once_written
from training.checkpoint import find_resume_point
from virnet import image_io
from virnet.image_io import read_image

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def world(world_template, tmp_path) -> Path:
    shutil.copytree(world_template, tmp_path / "w")
    return tmp_path / "w"


def train_argv(world: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "--config", "denoise-niid-cpu", "--data", str(world / "data"), "--out", str(out),
            "--no-progress", "--steps", str(steps), *extra, *TINY_TRAIN]


def log_steps(out: Path) -> list[int]:
    with (out / "metrics.csv").open() as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def log_prefix(out: Path, step: int) -> bytes:
    """metrics.csv up to and including the row of `step`."""
    lines = (out / "metrics.csv").read_bytes().splitlines(keepends=True)
    return b"".join(lines[: 1 + step])


def test_sigkill_during_training_then_resume_continues_at_the_last_checkpoint(world, run):
    out = world / "killed"
    argv = [sys.executable, "-m", "virnet", *train_argv(world, out, 500, "run.checkpoint_every=3")]
    sigkill_once_written(argv, out / "checkpoints" / "ckpt_00000006.json", REPO, ENV)
    kept = find_resume_point(out / "checkpoints").state["step"]
    assert 6 <= kept < 500 and max(log_steps(out)) >= kept
    history = log_prefix(out, kept)

    status, stdout, err = run(*train_argv(world, out, kept + 3, "run.checkpoint_every=3"), "--resume")
    assert status == 0, err
    assert f"trained {kept + 3} steps" in stdout
    assert all(line.startswith("virnet: warning: resuming from") for line in err), "at most a note on a half-saved one"
    assert log_steps(out) == list(range(1, kept + 4)), "one row per step, none twice"
    assert (out / "metrics.csv").read_bytes().startswith(history), "the rows up to the checkpoint are kept as they were"


def test_with_the_latest_checkpoint_truncated_the_fallback_is_said_in_one_line(world, run):
    out = world / "run"
    latest = out / "checkpoints" / f"ckpt_{RUN_STEPS:08d}.safetensors"
    latest.write_bytes(latest.read_bytes()[:-64])
    history = log_prefix(out, RUN_EVERY)
    status, _, err = run(*train_argv(world, out, RUN_STEPS + 1, f"run.checkpoint_every={RUN_EVERY}"), "--resume")
    assert status == 0
    assert len(err) == 1
    assert err[0].startswith(f"virnet: warning: resuming from ckpt_{RUN_EVERY:08d}.safetensors; newer, unreadable: ")
    assert f"ckpt_{RUN_STEPS:08d} (checkpoint tensors" in err[0] and "truncated or corrupted" in err[0]
    assert log_steps(out) == list(range(1, RUN_STEPS + 2))
    assert (out / "metrics.csv").read_bytes().startswith(history)


def default_sigint() -> None:
    """In the child, before exec: Ctrl-C's default action, even when this suite runs in a shell's
    background, whose jobs inherit SIGINT ignored (a Python started so ignores it too)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def many_images(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        iio.imwrite(folder / f"img{i:03d}.png", rgb(64, 64, seed=i))


def test_sigint_during_a_folder_restore_then_skip_existing_finishes_it(world, run):
    many_images(world / "in", 40)
    out = world / "out"
    model = world / "models" / "denoise.safetensors"
    argv = [sys.executable, "-m", "virnet", "restore", str(world / "in"), "-o", str(out), "--model", str(model)]
    process = subprocess.Popen(argv, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())):
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1].startswith("virnet: error: interrupted after "), stderr
    assert "rerun with --skip-existing" in stderr and "Traceback" not in stderr
    assert leftovers(out) == [], "no temporary file is left"
    done = {p.name: p.read_bytes() for p in out.iterdir()}
    assert 0 < len(done) < 40
    assert all(read_image(out / name).pixels.shape == (3, 64, 64) for name in done), "every written file is whole"

    status, stdout, err = run("restore", world / "in", "-o", out, "--model", model, "--skip-existing")
    assert status == 0 and err == []
    assert f"skipped {len(done)} of 40 images" in stdout
    assert sorted(p.name for p in out.iterdir()) == [f"img{i:03d}.png" for i in range(40)]
    assert all((out / name).read_bytes() == data for name, data in done.items()), "existing outputs untouched"


def test_a_full_disk_stops_a_folder_restore_without_a_partial_image_then_it_continues(world, run):
    model = world / "models" / "denoise.safetensors"
    disk = world / "disk"
    with small_disk(disk, 12):  # three 4 KiB pages: one image with its σ map, then no room
        status, _, err = run("restore", world / "photos", "-o", disk, "--model", model, "--save-sigma")
        assert status == 2 and len(err) == 1
        assert "No space left on device" in err[0] and "stopped after 1 of 3 images" in err[0]
        assert sorted(p.name for p in disk.iterdir()) == ["p0.png", "p0_sigma.tif"], "the set of p1 is all or nothing"
        first = snapshot(disk)
        subprocess.run(["mount", "-o", "remount,size=1m", str(disk)], check=True)  # make room
        argv = ("restore", world / "photos", "-o", disk, "--model", model, "--save-sigma", "--skip-existing")
        status, stdout, _ = run(*argv)
        assert status == 0 and "skipped 1 of 3 images" in stdout
        assert len(list(disk.iterdir())) == 6 and leftovers(disk) == []
        assert all(snapshot(disk)[name] == data for name, data in first.items())


def test_a_full_disk_during_sampling_leaves_no_draws(world, run):
    disk = world / "disk"
    with small_disk(disk, 16):
        status, _, err = run("sample", world / "photo.png", "-n", 8, "-o", disk / "draws", "--model",
                             world / "models" / "denoise.safetensors")
        assert status == 2 and len(err) == 1 and "No space left on device" in err[0]
        assert list(disk.iterdir()) == [], "neither draws nor the temporary folder"


def fail_after(monkeypatch, calls: int) -> None:
    """Make the encoder raise ENOSPC from its `calls + 1`-th file on, as a full disk does."""
    real, count = image_io.encode, {"n": 0}

    def encode(target, array, suffix):
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(target, array, suffix)

    monkeypatch.setattr(image_io, "encode", encode)


def test_enospc_while_writing_draws_into_an_existing_folder_adds_nothing(world, run, monkeypatch):
    draws = world / "draws"
    draws.mkdir()
    (draws / "notes.txt").write_text("mine")
    fail_after(monkeypatch, 5)
    status, _, err = run("sample", world / "photo.png", "-n", 8, "-o", draws, "--model",
                         world / "models" / "denoise.safetensors")
    assert status == 2 and len(err) == 1 and "No space left" in err[0]
    assert [p.name for p in draws.iterdir()] == ["notes.txt"]


def test_enospc_on_a_sidecar_leaves_no_restored_image_either(world, run, monkeypatch):
    fail_after(monkeypatch, 1)
    status, _, err = run("restore", world / "photo.png", "-o", world / "out.png", "--model",
                         world / "models" / "denoise.safetensors", "--save-sigma")
    assert status == 2 and len(err) == 1 and "stopped after 0 of 1 images" in err[0]
    assert not (world / "out.png").exists() and leftovers(world) == []


def test_the_bit_depth_and_pixel_limit_options_do_what_the_errors_suggest(world, run, tmp_path):
    model = write_tiny_checkpoint(tmp_path, "denoise")
    tifffile.imwrite(world / "rgb16.tif", np.full((16, 16, 3), 40000, np.uint16), photometric="rgb")
    status, _, err = run("restore", world / "rgb16.tif", "-o", world / "out.png", "--model", model, "--bit-depth", "8")
    assert status == 0, err
    assert read_image(world / "out.png").bit_depth == 8
    status, _, err = run("restore", world / "photo.png", "-o", world / "o2.png", "--model", model, "--max-pixels", 480)
    assert status == 0, err
