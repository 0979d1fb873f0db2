"""Fault battery: every bad input to `virnet` and to the Python API is one clean error and
changes nothing.

Each command-line case runs `virnet ARGV` on a fresh copy of a small world (inputs, tiny
models, a finished 4-step training run; tests/faults.py) after an optional fault-making
setup, and asserts: exit status 2, exactly one stderr line ``virnet: error: ...`` holding
the expected fragment (other lines may only be one-line ``virnet: warning: ...``), no
traceback, and every file and folder exactly as before (nothing
written, nothing partial, no temporary file, every pre-existing file byte-identical).
A new case is one line of CLI_CASES: (id, argv with {placeholders}, fragment, setup).
Interrupted and killed work is in test_faults_interrupted.py.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from tests.checkpoints import tiny_guide
from tests.faults import (
    TINY_TRAIN,
    assert_unchanged,
    png_bomb,
    png_header_bomb,
    read_only_folder,
    snapshot,
    tiff_header_bomb,
)
from training.checkpoint import load_weights, save_weights
import cli
from cli import restoring
from virnet import api
from virnet.api import load_for_task, restore, sample_posterior
from virnet.errors import VirnetError
from virnet.image_io import ImageTooLarge, read_image
from virnet.models import load_model

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def train(options: str, overrides: str = "") -> str:
    """argv of `virnet train` on the world's data with the tiny model (overrides come last)."""
    return f"train --config denoise-niid-cpu --data {{data}} --no-progress {options} {{tiny}} {overrides}"


@dataclass
class World:
    root: Path
    monkeypatch: pytest.MonkeyPatch
    exits: contextlib.ExitStack  # what a setup mounted or entered, left after the case

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    def fill(self, text: str) -> str:
        names = {"tmp": self.root, "tiny": " ".join(TINY_TRAIN)}
        names.update({name: self.root / name for name in ("photo", "photos", "data", "run")})
        names["photo"] = self.root / "photo.png"
        names["denoiser"] = self.root / "models" / "denoise.safetensors"
        names["upscaler"] = self.root / "models" / "sr-x2.safetensors"
        return text.format(**names)


@pytest.fixture
def world(world_template, tmp_path, monkeypatch):
    shutil.copytree(world_template, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    with contextlib.ExitStack() as exits:
        yield World(tmp_path / "w", monkeypatch, exits)


# Fault makers: World -> None.


def write(name: str, data: bytes | str) -> Callable[[World], None]:
    def make(w: World) -> None:
        (w / name).parent.mkdir(parents=True, exist_ok=True)
        (w / name).write_bytes(data.encode() if isinstance(data, str) else data)

    return make


def truncated_png(w: World) -> None:
    data = (w / "photo.png").read_bytes()
    (w / "cut.png").write_bytes(data[: len(data) // 2])


def edit_model(change: Callable[[dict, dict], None]) -> Callable[[World], None]:
    """Rewrite models/denoise.safetensors after `change(state_dict, metadata)`."""

    def make(w: World) -> None:
        path = w / "models/denoise.safetensors"
        state, metadata = load_weights(path)
        change(state, metadata)
        save_weights(path, state, metadata)

    return make


def nan_weights(state: dict, metadata: dict) -> None:
    for tensor in state.values():
        tensor.fill_(float("nan"))


def other_widths(state: dict, metadata: dict) -> None:
    metadata["guide_config"]["rnet_widths"] = [8, 32]


def pickled_model(w: World) -> None:
    torch.save(tiny_guide().state_dict(), w / "models/denoise.safetensors")
    w.monkeypatch.setattr("pickle.load", _no_unpickling)
    w.monkeypatch.setattr("pickle.loads", _no_unpickling)


def _no_unpickling(*args, **kwargs):
    raise AssertionError("a file was unpickled")


def damage_checkpoints(how: str) -> Callable[[World], None]:
    """Make every checkpoint of run/ unreadable: "truncate", "garbage" or "pickle" its tensors."""

    def make(w: World) -> None:
        for path in sorted((w / "run/checkpoints").glob("*.safetensors")):
            if how == "truncate":
                path.write_bytes(path.read_bytes()[:-100])
            elif how == "garbage":
                path.write_bytes(b"\x13" * path.stat().st_size)
            else:
                torch.save({"model": tiny_guide().state_dict()}, path)
                w.monkeypatch.setattr("pickle.load", _no_unpickling)

    return make


def remove(name: str) -> Callable[[World], None]:
    return lambda w: shutil.rmtree(w / name)


def float_tiff_0_255(w: World) -> None:
    values = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32) * 255
    tifffile.imwrite(w / "f.tif", values, photometric="rgb")


def rgb16_tiff(w: World) -> None:
    values = np.random.default_rng(0).integers(0, 65536, (16, 16, 3), dtype=np.uint16)
    tifffile.imwrite(w / "rgb16.tif", values, photometric="rgb")


def read_only(w: World) -> None:
    w.exits.enter_context(read_only_folder(w / "locked"))
    w.monkeypatch.setattr(restoring, "restore", _no_computation)  # the refusal comes first
    w.monkeypatch.setattr(restoring, "sample_posterior", _no_computation)


def _no_computation(*args, **kwargs):
    raise AssertionError("computed before checking the output")


def both(*makers: Callable[[World], None]) -> Callable[[World], None]:
    return lambda w: [make(w) for make in makers]


def bomb(maker, name: str, side: int) -> Callable[[World], None]:
    return lambda w: maker(w / name, side, side)


def restore_argv(source: str = "{photo}", out: str = "{tmp}/out.png", options: str = "") -> str:
    return f"restore {source} -o {out} --model {{denoiser}} {options}"


def sample_argv(source: str = "{photo}", out: str = "{tmp}/draws", options: str = "-n 3") -> str:
    return f"sample {source} -o {out} --model {{denoiser}} {options}"


def imp(source: str, options: str = "--task denoise", out: str = "{tmp}/m.safetensors") -> str:
    return f"import-official {source} {options} -o {out}"


def torch_file(name: str, content) -> Callable[[World], None]:
    return lambda w: torch.save(content, w / name)


def pickled_code(w: World) -> None:
    """A pickle whose loading would call a function (here a harmless one): weights_only refuses it."""
    (w / "evil.pth").write_bytes(pickle.dumps(_Evil()))


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


R, S = restore_argv(), sample_argv()
NO_DATA = "train --config denoise-niid-cpu --data {tmp}/nodata --out {tmp}/new --no-progress {tiny}"
TRUNCATED_MODEL = write("models/denoise.safetensors", b"\x08" + b"\0" * 20)
CLI_CASES = [
    # restore: inputs
    ("restore-missing-input", restore_argv("{tmp}/none.png"), "no such file", None),
    ("restore-text-input", restore_argv("{tmp}/a.txt"), "unsupported file type", write("a.txt", "hi")),
    ("restore-fake-png", restore_argv("{tmp}/fake.png"), "not a valid image", write("fake.png", "hi")),
    ("restore-truncated-png", restore_argv("{tmp}/cut.png"), "truncated", truncated_png),
    ("restore-empty-folder", restore_argv("{tmp}/empty", "{tmp}/out"), "no images", write("empty/a.txt", "")),
    ("restore-png-bomb-header", restore_argv("{tmp}/b.png"), "= 900.0 MP, above the limit of 100.0 MP",
     bomb(png_header_bomb, "b.png", 30000)),
    ("restore-png-bomb-valid", restore_argv("{tmp}/b.png"), "GiB of memory", bomb(png_bomb, "b.png", 12000)),
    ("restore-tiff-bomb", restore_argv("{tmp}/b.tif"), "above the limit", bomb(tiff_header_bomb, "b.tif", 30000)),
    ("restore-max-pixels-small", R + "--max-pixels 100", "= 480 pixels, above the limit of 100 pixels", None),
    ("restore-max-pixels-zero", R + "--max-pixels 0", "must be a positive integer", None),
    ("restore-float-0-255", restore_argv("{tmp}/f.tif", "{tmp}/o.tif"), "outside the [0, 1] scale", float_tiff_0_255),
    # restore: the model
    ("restore-pickled-model", R, "pickled", pickled_model),
    ("restore-truncated-model", R, "not a valid safetensors", TRUNCATED_MODEL),
    ("restore-model-without-json", R, "metadata file", lambda w: (w / "models/denoise.json").unlink()),
    ("restore-wrong-shape-model", R, "do not match the configuration", edit_model(other_widths)),
    ("restore-nan-weights", R, "hold NaN or infinite values", edit_model(nan_weights)),
    ("restore-sr-with-denoiser", R + "--task sr", "cannot do task 'sr'", None),
    ("restore-kernel-without-sr", R + "--save-kernel", "--save-kernel needs", None),
    # restore: options and devices
    pytest.param("restore-cuda-without-cuda", R + "--device cuda", "CUDA is not available", None, marks=NO_CUDA),
    ("restore-unknown-device", R + "--device banana", "unknown device", None),
    ("restore-tile-zero", R + "--tile 0", "tile side must be a positive integer", None),
    ("restore-skip-and-overwrite", R + "--skip-existing --overwrite", "choose one of --skip-existing", None),
    ("restore-16-bit-colour-png", restore_argv("{tmp}/rgb16.tif"), "--bit-depth 8", rgb16_tiff),
    ("restore-float-png", R + "--bit-depth 32", "float samples need a .tif", None),
    ("restore-16-bit-jpeg", restore_argv(out="{tmp}/out.jpg", options="--bit-depth 16"), "8-bit only", None),
    # restore: the output location
    ("restore-webp-output", restore_argv(out="{tmp}/x.webp"), "unsupported file type .webp", None),
    ("restore-folder-to-one-file", restore_argv("{photos}", "{tmp}/x.png"), "names an image file", None),
    ("restore-existing-output", R, "refusing to overwrite", write("out.png", "precious")),
    ("restore-existing-sidecar", R + "--save-sigma", "out_sigma.tif", write("out_sigma.tif", "keep")),
    ("restore-onto-input", restore_argv(out="{photo}", options="--overwrite"), "would overwrite an input", None),
    ("restore-output-under-a-file", restore_argv(out="{tmp}/photo.png/x.png"), "is a file, not a folder", None),
    ("restore-read-only-output", restore_argv(out="{tmp}/locked/out.png"), "is not writable", read_only),
    # sample
    ("sample-zero-draws", sample_argv(options="-n 0"), "positive", None),
    ("sample-folder-input", sample_argv("{photos}"), "one image file", None),
    ("sample-image-named-output", sample_argv(out="{tmp}/draws.png"), "names an image file", None),
    ("sample-existing-draw", S, "refusing to overwrite", write("draws/photo_z001.png", "mine")),
    ("sample-png-bomb", sample_argv("{tmp}/b.png"), "GiB of memory", bomb(png_header_bomb, "b.png", 20000)),
    ("sample-pickled-model", S, "pickled", pickled_model),
    ("sample-nan-weights", S, "hold NaN or infinite values", edit_model(nan_weights)),
    ("sample-read-only-output", sample_argv(out="{tmp}/locked/draws"), "is not writable", read_only),
    # train: the command
    ("train-steps-zero", train("--out {tmp}/new --steps 0"), "optim.steps must be a positive", None),
    ("train-steps-negative", train("--out {tmp}/new --steps -1"), "optim.steps must be a positive", None),
    ("train-override-type", train("--out {tmp}/new", "optim.lr=fast"), "optim.lr must be of type float", None),
    ("train-override-unknown", train("--out {tmp}/new", "optim.nonsense=1"), "unknown key", None),
    ("train-unknown-preset", "train --config no-such --data {data} --out {tmp}/new", "unknown preset", None),
    pytest.param("train-cuda-without-cuda", train("--out {tmp}/new --device cuda"), "CUDA is not available", None,
                 marks=NO_CUDA),
    ("train-unknown-device", train("--out {tmp}/new --device banana"), "unknown device", None),
    ("train-missing-data", NO_DATA, "not found", None),
    ("train-empty-data", NO_DATA, "no images", write("nodata/readme.txt", "")),
    ("train-unreadable-data", NO_DATA, "usable", both(write("nodata/a.png", "x"), write("nodata/b.png", "y"))),
    ("train-out-is-a-file", train("--out {photo}"), "is a file", None),
    ("train-read-only-out", train("--out {tmp}/locked/run"), "is not writable", read_only),
    ("train-over-an-existing-run", train("--out {run}"), "already holds", None),
    # train --resume: a run's history is never destroyed
    ("resume-truncated-checkpoints", train("--out {run} --resume"), "none of the 2", damage_checkpoints("truncate")),
    ("resume-garbage-checkpoints", train("--out {run} --resume"), "none of the 2", damage_checkpoints("garbage")),
    ("resume-pickled-checkpoints", train("--out {run} --resume"), "none of the 2", damage_checkpoints("pickle")),
    ("resume-no-checkpoints", train("--out {run} --resume"), "no checkpoint folder", remove("run/checkpoints")),
    ("resume-no-run", train("--out {tmp}/never --resume"), "no run folder", None),
    ("resume-other-architecture", train("--out {run} --resume", "guide.rnet_widths=[8,32]"), "rnet_widths", None),
    ("resume-fewer-steps", train("--out {run} --resume --steps 3"), "beyond optim.steps = 3", None),
    # import-official: released checkpoints are read as plain tensors or refused
    ("import-missing-file", imp("{tmp}/none.pth"), "no such checkpoint file", None),
    ("import-text-file", imp("{tmp}/a.pth"), "not a PyTorch checkpoint", write("a.pth", "hello")),
    ("import-code-in-pickle", imp("{tmp}/evil.pth"), "weights_only=True refused it", pickled_code),
    ("import-not-a-state-dict", imp("{tmp}/list.pth"), "not a VIRNet checkpoint", torch_file("list.pth", [1, 2])),
    ("import-missing-keys", imp("{tmp}/few.pth"), "lacks", torch_file("few.pth", {"a": torch.zeros(1)})),
    ("import-scale-for-denoise", imp("{tmp}/few.pth", "--task denoise --scale 2"), "--scale is for --task sr", None),
    ("import-sr-without-scale", imp("{tmp}/few.pth", "--task sr"), "needs --scale", None),
    ("import-pth-output", imp("{tmp}/few.pth", out="{tmp}/m.pth"), "must be a .safetensors file", None),
    ("import-existing-output", imp("{tmp}/few.pth", out="{tmp}/photo.png"), "must be a .safetensors file", None),
]


def case_ids(cases: list) -> list[str]:
    return [case.values[0] if hasattr(case, "values") else case[0] for case in cases]


@pytest.mark.parametrize("case, argv, fragment, setup", CLI_CASES, ids=case_ids(CLI_CASES))
def test_bad_input_is_one_error_line_and_changes_nothing(world, capsys, case, argv, fragment, setup):
    if setup is not None:
        setup(world)
    before = snapshot(world.root)
    status = cli.main(world.fill(argv).split())
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("virnet: warning: ")]
    assert status == 2, err
    assert len(errors) == 1 and errors[0].startswith("virnet: error: "), err
    assert fragment in errors[0]
    assert "Traceback" not in err
    assert_unchanged(before, world.root)


def _image(world: World) -> torch.Tensor:
    return read_image(world / "photo.png").pixels


DENOISER = "models/denoise.safetensors"


def nan_posterior(w: World) -> None:
    """The networks return NaN for µ, as finite but extreme weights can make them."""
    real = api.tiled_posterior

    def poisoned(*args, **kwargs):
        post = real(*args, **kwargs)
        post.mu = torch.full_like(post.mu, float("nan"))
        return post

    w.monkeypatch.setattr(api, "tiled_posterior", poisoned)


def restore_with(image=None, **options) -> Callable[[World], object]:
    """A call of `restore` on the world's photo (or `image`) with the tiny denoiser."""
    return lambda w: restore(_image(w) if image is None else image(w), w / DENOISER, **options)


API_CASES = [
    # id, setup, call, fragment of the message
    pytest.param("api-cuda-without-cuda", None, restore_with(device="cuda"), "CUDA is not available", marks=NO_CUDA),
    ("api-unknown-device", None, restore_with(device="banana"), "unknown device"),
    ("api-negative-overlap", None, restore_with(overlap=-1), "overlap"),
    ("api-zero-budget", None, restore_with(memory_budget=0), "memory budget"),
    ("api-fractional-tile", None, restore_with(tile=2.5), "tile side"),
    ("api-text-seed", None, lambda w: sample_posterior(_image(w), 2, w / DENOISER, seed="a"), "seed"),
    ("api-zero-draws", None, lambda w: sample_posterior(_image(w), 0, w / DENOISER), "number of draws"),
    ("api-0-255-image", None, restore_with(lambda w: _image(w) * 255), "divide 8-bit values by 255"),
    ("api-numpy-image", None, restore_with(lambda w: np.zeros((3, 8, 8), np.float32)), "expected an image tensor"),
    ("api-two-channels", None, restore_with(lambda w: torch.rand(2, 8, 8)), "got 2 channels"),
    ("api-nan-weights", edit_model(nan_weights), lambda w: load_model(w / DENOISER), "NaN or infinite"),
    ("api-nan-output", nan_posterior, restore_with(), "the model produced NaN or infinite values (mu)"),
    ("api-wrong-task", None, lambda w: load_for_task(w / "models/sr-x2.safetensors", task="denoise"), "cannot do task"),
    ("api-image-bomb", bomb(png_bomb, "b.png", 12000), lambda w: read_image(w / "b.png"), "144.0 MP"),
    ("api-bad-pixel-limit", None, lambda w: read_image(w / "photo.png", max_pixels=0), "pixel limit"),
]


@pytest.mark.parametrize("case, setup, call, fragment", API_CASES, ids=case_ids(API_CASES))
def test_the_api_raises_one_line_virnet_errors(world, case, setup, call, fragment):
    if setup is not None:
        setup(world)
    before = snapshot(world.root)
    with pytest.raises(VirnetError) as raised:
        call(world)
    message = str(raised.value)
    assert fragment in message and "\n" not in message
    assert_unchanged(before, world.root)


def test_the_size_is_checked_from_the_header_before_any_decoding(world, monkeypatch):
    png_bomb(world / "bomb.png", 12000, 12000)
    monkeypatch.setattr("virnet.image_io.decode", _no_computation)
    with pytest.raises(ImageTooLarge, match="12000×12000 = 144.0 MP"):
        read_image(world / "bomb.png")


def test_raising_the_limit_lets_an_image_past_pillows_own_bomb_guard(world, monkeypatch):
    monkeypatch.setattr("PIL.Image.MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse 480 pixels
    assert read_image(world / "photo.png", max_pixels=480).pixels.shape == (3, 24, 20)
    with pytest.raises(ImageTooLarge):
        read_image(world / "photo.png", max_pixels=479)
