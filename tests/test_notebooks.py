"""Every notebook in notebooks/ runs top to bottom without error and is stored without outputs.

Each notebook runs in a fresh IPython kernel, as a student would run it in Jupyter: the working
directory is the notebook's own folder, and the repository root is on PYTHONPATH (what
`pip install -e .` gives), so notebooks can import the project's packages. The kernel is
ipykernel's built-in "python3" spec for this very interpreter (sys.executable): a stale
user-level kernelspec pointing at another Python cannot hijack the test.
"""

import os
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def _kernel_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _this_python_kernel():
    # No kernelspec folders: jupyter_client then falls back to ipykernel's bundled "python3"
    # spec, which launches sys.executable (no `ipykernel install` needed on a clean machine).
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


def test_notebooks_are_found():
    assert NOTEBOOKS, f"no notebooks found in {REPO / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs or execution counts; strip them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        km=_this_python_kernel(),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=_kernel_env())  # raises CellExecutionError, with the traceback, on any error
    ran = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]
    assert all(cell.execution_count is not None for cell in ran)
