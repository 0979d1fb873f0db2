"""Fine-tuning: a training run that starts from trained weights instead of a random guide.

The weights are a model file (``.safetensors`` + ``.json``, as training exports and
``virnet import-official`` writes). The guide's architecture comes from the weights' JSON,
since the weights only fit that architecture; the model's hyper-parameters (the ELBO's),
the data and the optimisation come from the run's config, and the optimizer starts fresh.
Only ``guide.detach_degradation``, a training choice, is kept from the config.

RNet can be grown deeper (``rnet_blocks``, ``virnet train --grow-rnet-blocks N``): each of its
stages gets residual blocks appended until it has N, and each new block starts as the
identity (its last convolution at zero: out = x + conv2(·) = x), so the grown guide computes
what the weights did and training starts from their quality with more capacity.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch

from generative.config import ModelConfig
from guides.guide import GuideConfig, VIRNetGuide
from guides.rnet import RNet
from training.checkpoint import load_weights
from training.config import TrainConfig

MUST_MATCH = ("task", "image_channels", "sigma_channels")  # what SNet/KNet's shapes depend on


def init_record(path: Path) -> dict[str, str]:
    """What a run records of the weights it started from: their path as given and the
    SHA-256 of their tensor file, which still names them after the path holds other weights."""
    return {"path": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}


def initial_weights(
    config: TrainConfig, path: Path, rnet_blocks: int | None = None
) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """(config with the weights' guide architecture, the weights' guide state_dict); with
    ``rnet_blocks``, RNet grown to that many blocks per stage (the module docstring).

    Raises ValueError (one line, naming the file) for a file that is not a model, a
    model of another task, image or noise-map channel count than the config trains, or an
    ``rnet_blocks`` below the weights' own.
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
    if rnet_blocks is not None and rnet_blocks != guide.rnet_blocks:
        guide, state = deeper_rnet(config.model, guide, state, rnet_blocks, path)
    return dataclasses.replace(config, guide=guide), state


def deeper_rnet(
    model: ModelConfig, guide: GuideConfig, state: dict[str, torch.Tensor], blocks: int, path: Path
) -> tuple[GuideConfig, dict[str, torch.Tensor]]:
    """(guide config with ``blocks`` RNet blocks per stage, its state_dict: the weights' own
    parameters, and identity blocks appended to every stage)."""
    if blocks < guide.rnet_blocks:
        raise ValueError(
            f"--grow-rnet-blocks {blocks}: {path} already has {guide.rnet_blocks} RNet blocks per stage; "
            "blocks can be added, not removed"
        )
    grown_config = dataclasses.replace(guide, rnet_blocks=blocks)
    grown = VIRNetGuide(model, grown_config)
    missing, unexpected = grown.load_state_dict(state, strict=False)
    start_as_identity(grown.rnet, first=guide.rnet_blocks)
    new = {name for name in grown.state_dict() if name not in state}
    assert set(missing) == new and not unexpected, "only the appended blocks are new"
    return grown_config, grown.state_dict()


def start_as_identity(rnet: RNet, first: int) -> None:
    """Zero the last convolution of every residual block from index ``first`` on, in each stage."""
    with torch.no_grad():
        for stage in [*rnet.down_path, *rnet.up_path]:
            for block in stage.body[first:]:
                block.conv2.weight.zero_()
                block.conv2.bias.zero_()
