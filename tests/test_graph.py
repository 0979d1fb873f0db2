"""The model's graph (Fig. 1) as Pyro reads it from the code, and the committed drawing of it."""

import re
import shutil
from pathlib import Path

import pytest

from generative.config import denoising_config, sr_config
from generative.graph import model_relations, render

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "model.svg"


def test_sr_graph_is_the_papers_figure_1():
    relations = model_relations(sr_config(4))
    assert relations["sample_sample"]["y"] == ["sigma2", "rho", "lambda2", "z"]
    assert all(relations["sample_sample"][name] == [] for name in ("sigma2", "rho", "lambda2", "z"))
    assert relations["sample_dist"] == {
        "sigma2": "InverseGamma", "rho": "Normal", "lambda2": "InverseGamma", "z": "Normal", "y": "Normal"
    }
    assert relations["plate_sample"] == {"batch": ["sigma2", "rho", "lambda2", "z", "y"]}
    assert relations["observed"] == ["y"]


def test_denoising_graph_has_no_kernel():
    relations = model_relations(denoising_config())
    assert relations["sample_sample"]["y"] == ["sigma2", "z"]
    assert set(relations["sample_dist"]) == {"sigma2", "z", "y"}


def titles(svg: str) -> list[str]:
    return sorted(re.findall(r"<title>(.*?)</title>", svg))


def test_committed_drawing_is_what_render_model_draws(tmp_path):
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    drawn = render(tmp_path / "model.svg").read_text()
    assert titles(drawn) == titles(COMMITTED.read_text())
    assert "sigma2 ~ InverseGamma" in drawn and "sigma2&#45;&gt;y" in drawn


def test_committed_drawing_names_every_site():
    svg = COMMITTED.read_text()
    for name in ("sigma2", "rho", "lambda2", "z", "y", "batch"):
        assert f"<title>{name}</title>" in svg or f">{name}</text>" in svg
