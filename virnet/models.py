"""Loading trained VIRNet guides: weight files on disk and the defaults shipped in the package.

A model is the pair ``<name>.safetensors`` (the `VIRNetGuide` state_dict) and ``<name>.json``
(metadata: {"format": WEIGHTS_FORMAT, "model_config": ..., "guide_config": ..., "training":
...}), as written by training with `training.checkpoint.save_weights`. Nothing is unpickled:
a torch.save file is refused. Defaults live in ``virnet/weights/`` (package data) under names
such as "denoise", "sr-x2", "sr-x4".
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from generative.config import ModelConfig
from guides.guide import GuideConfig, VIRNetGuide
from training.checkpoint import load_weights
from virnet.errors import VirnetError

WEIGHTS_FORMAT = "virnet-pyro-weights/1"
EMBEDDED_DIR = Path(__file__).parent / "weights"
WEIGHTS_SUFFIX = ".safetensors"


def embedded_models() -> list[str]:
    """Names of the default models shipped in ``virnet/weights/`` (both files present), sorted."""
    if not EMBEDDED_DIR.is_dir():
        return []
    return sorted(p.stem for p in EMBEDDED_DIR.glob(f"*{WEIGHTS_SUFFIX}") if p.with_suffix(".json").is_file())


def default_model_name(task: str, scale: int | None) -> str:
    """The embedded default for a task: "denoise", or "sr-x{scale}" (scale 4 when None)."""
    return "denoise" if task == "denoise" else f"sr-x{scale or 4}"


def resolve_weights(path_or_name: str | Path) -> Path:
    """The .safetensors path of a model given as a file path or an embedded default's name.

    A value with a directory part or a suffix, or naming an existing file, is a path (a
    ``.json`` path points to its ``.safetensors`` sibling); anything else is looked up among
    the embedded defaults. Raises VirnetError for a missing file or an unknown name.
    """
    text = str(path_or_name)
    path = Path(text)
    is_path = isinstance(path_or_name, Path) or path.suffix or len(path.parts) > 1 or path.exists()
    if is_path:
        if path.suffix == ".json":
            path = path.with_suffix(WEIGHTS_SUFFIX)
        if path.suffix != WEIGHTS_SUFFIX:
            raise VirnetError(f"model file must end in {WEIGHTS_SUFFIX} (with a .json beside it), got {path}")
        if not path.is_file():
            raise VirnetError(f"no such model file: {path}")
        return path
    names = embedded_models()
    if text not in names:
        available = ", ".join(names) if names else "none (no default weights are shipped yet)"
        raise VirnetError(f"no embedded model named {text!r}, available: {available}")
    return EMBEDDED_DIR / f"{text}{WEIGHTS_SUFFIX}"


def load_model(path_or_name: str | Path, device: str | torch.device = "cpu") -> VIRNetGuide:
    """A trained guide, in eval mode with gradients off, on `device`, its weights in
    channels_last memory format (what `virnet.tiled_posterior` runs them in).

    path_or_name: a ``.safetensors`` file (with its ``.json`` beside it) or the name of an
    embedded default ("denoise", "sr-x4", ...; see `embedded_models`). The guide's
    `model_config` and `guide_config` come from the JSON metadata.
    Raises VirnetError (one line, naming the file) for a missing, corrupted, pickled or
    inconsistent model file.
    """
    path = resolve_weights(path_or_name)
    try:
        state, metadata = load_weights(path, device=device)
    except ValueError as error:
        raise VirnetError(f"cannot load model {path}: {error}") from None
    guide = _build_guide(metadata, path)
    try:
        guide.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:300]
        raise VirnetError(
            f"cannot load model {path}: weights do not match the configuration in its JSON ({detail})"
        ) from None
    return guide.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)


def _build_guide(metadata: dict, path: Path) -> VIRNetGuide:
    """VIRNetGuide(ModelConfig(**model_config), GuideConfig(**guide_config)) from the metadata."""
    if not isinstance(metadata, dict) or metadata.get("format") != WEIGHTS_FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise VirnetError(f"cannot load model {path}: its JSON has format {found!r}, expected {WEIGHTS_FORMAT!r}")
    try:
        model_config = ModelConfig(**metadata["model_config"])
        guide_config = GuideConfig(**metadata["guide_config"])
        return VIRNetGuide(model_config, guide_config)
    except (KeyError, TypeError, ValueError) as error:
        detail = json.dumps(str(error))[1:-1]
        raise VirnetError(f"cannot load model {path}: invalid configuration in its JSON ({detail})") from None
