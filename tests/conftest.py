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


@pytest.fixture(scope="session")
def tracking_run(tmp_path_factory):
    """The run folder of `tests.helpers.train_tracking_guide` (trained once per session)."""
    torch.set_num_threads(1)
    return train_tracking_guide(tmp_path_factory.mktemp("tracking"))
