from pathlib import Path

import pyro
import pytest
import torch

from tests.helpers import train_tracking_guide


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    """Each test starts from an empty param store, validation on and a fixed seed."""
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    torch.set_num_threads(1)
    yield


@pytest.fixture
def run(capsys):
    """cli.main(argv) -> (exit status, stdout, stderr lines)."""
    import cli

    def invoke(*argv):
        status = cli.main([str(a) for a in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err.splitlines()

    return invoke


@pytest.fixture(scope="session")
def world_template(tmp_path_factory) -> Path:
    """The fault battery's world (`tests.faults.build_world`), built once; tests copy it."""
    from tests.faults import build_world

    root = tmp_path_factory.mktemp("world")
    build_world(root)
    return root
@pytest.fixture(scope="session")
def tracking_run(tmp_path_factory):
    """The run folder of `tests.helpers.train_tracking_guide` (trained once per session)."""
    torch.set_num_threads(1)
    return train_tracking_guide(tmp_path_factory.mktemp("tracking"))


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """Tiny untrained checkpoints: {"denoise": path, "sr": path (×4)}."""
    from tests.checkpoints import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("weights")
    return {"denoise": write_tiny_checkpoint(folder, "denoise"), "sr": write_tiny_checkpoint(folder, "sr", 4)}


def quick_arguments(name: str, weights) -> list[str]:
    """The quick command of each protocol: tiny models, the sanity pseudo-methods, no BM3D."""
    denoiser, upscaler = str(weights["denoise"]), str(weights["sr"])
    return {
        "denoise-niid": ["--model", denoiser, "--compare-model", denoiser, "--baselines", "nlm", "identity", "ground-truth"],
        "denoise-iid": ["--model", denoiser, "--baselines", "nlm", "identity", "ground-truth"],
        "denoise-real": ["--model", denoiser, "--baselines", "nlm", "identity", "ground-truth"],
        "sr": ["--model", upscaler, "--compare-model", upscaler, "--scales", "2", "4", "--baselines", "bicubic", "identity",
               "ground-truth", "--oracle-kernel"],
        "noise-estimation": ["--model", denoiser, "--baselines", "skimage", "ground-truth"],
        "calibration": ["--model", denoiser, upscaler],
        "kernel-estimation": ["--model", upscaler, "--baselines", "delta", "constant", "ground-truth"],
        "profile": ["--model", denoiser],
        "ablation": [],
    }[name]


@pytest.fixture(scope="session")
def quick(tmp_path_factory, weights):
    """quick(name) -> (result.json as a dict, output folder): `virnet bench NAME --quick` on the
    tiny models; each protocol runs once per session."""
    import json

    import cli

    done = {}

    def run(name: str):
        if name not in done:
            torch.set_num_threads(1)
            out = tmp_path_factory.mktemp(name)
            argv = ["bench", name, "--quick", "--device", "cpu", "--out", str(out), *quick_arguments(name, weights)]
            assert cli.main(argv) == 0
            done[name] = json.loads((out / "result.json").read_text()), out
        return done[name]

    return run
