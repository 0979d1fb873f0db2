"""Fine-tuning: a training run that starts from trained weights instead of a random guide.

The weights are a model file (``.safetensors`` + ``.json``, as training exports and
``virnet import-official`` writes). The guide's architecture comes from the weights' JSON,
since the weights only fit that architecture; the model's hyper-parameters (the ELBO's),
the data and the optimisation come from the run's config, and the optimizer starts fresh.
Only ``guide.detach_degradation``, a training choice, is kept from the config.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from generative.config import ModelConfig
from guides.guide import GuideConfig, VIRNetGuide
from training.checkpoint import load_weights
from training.config import TrainConfig

MUST_MATCH = ("task", "image_channels", "sigma_channels")  # what SNet/KNet's shapes depend on


def initial_weights(config: TrainConfig, path: Path) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """(config with the weights' guide architecture, the weights' guide state_dict).

    Raises ValueError (one line, naming the file) for a file that is not a model, or a
    model of another task, image or noise-map channel count than the config trains.
    """
    path = Path(path)
    state, metadata = load_weights(path)
    try:
        model = ModelConfig(**metadata["model_config"])
        guide = GuideConfig(**metadata["guide_config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"--init {path}: its JSON has no valid model_config and guide_config ({error})") from None
    for field in MUST_MATCH:
        theirs, ours = getattr(model, field), getattr(config.model, field)
        if theirs != ours:
            raise ValueError(
                f"--init {path} is a model with {field} = {theirs!r}, but the config trains {field} = {ours!r}"
            )
    guide = dataclasses.replace(guide, detach_degradation=config.guide.detach_degradation)
    try:
        VIRNetGuide(config.model, guide).load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:300]
        raise ValueError(f"--init {path}: the weights do not match the configuration in its JSON ({detail})") from None
    return dataclasses.replace(config, guide=guide), state
