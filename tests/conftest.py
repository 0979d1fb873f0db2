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
