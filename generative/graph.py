"""The model's graphical structure (the paper's Fig. 1), read from the Pyro program itself.

    python -m generative.graph docs/model.svg   # needs the graphviz package and Graphviz's `dot`

`model_relations` gives the dependency structure (which sites feed which, the plate, what is
observed) with Pyro's `get_model_relations`, no Graphviz needed; `render` draws it with
`pyro.render_model`. The blind SR model is drawn: denoising is the same graph without the
kernel sites `rho` and `lambda2`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyro
import torch
from pyro.infer.inspect import get_model_relations

from generative.config import ModelConfig, sr_config
from generative.model import VIRNetModel

EXAMPLE_SIDE = 24  # observed side of the placeholder batch the model is traced on


def example_arguments(config: ModelConfig) -> tuple:
    """Placeholder (y, x, ξ, Λ̂) of one image for tracing the model: only their shapes matter."""
    side, scale = EXAMPLE_SIDE, config.scale
    y = torch.zeros(1, config.image_channels, side, side)
    x = torch.zeros(1, config.image_channels, side * scale, side * scale)
    xi = torch.full((1, config.sigma_channels, side, side), 1e-2)
    kernel_params_hat = torch.tensor([[1.0, 1.0, 0.0]]) if config.has_kernel else None
    return y, x, xi, kernel_params_hat


def model_relations(config: ModelConfig) -> dict:
    """Pyro's description of the model's graph: sample_sample (each site's parents),
    sample_dist (each site's distribution), plate_sample and observed."""
    return get_model_relations(VIRNetModel(config), model_args=example_arguments(config))


def render(path: Path, config: ModelConfig | None = None) -> Path:
    """Draw the model (default: blind ×4 SR) with its distributions to `path` (format from the
    suffix, e.g. .svg); needs the graphviz package and the `dot` program."""
    config = config or sr_config(4)
    path = Path(path)
    pyro.render_model(
        VIRNetModel(config), model_args=example_arguments(config), filename=str(path), render_distributions=True
    )
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generative.graph", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="image file to write, e.g. docs/model.svg")
    args = parser.parse_args(argv)
    print(f"wrote {render(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
