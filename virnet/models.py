"""Loading trained VIRNet guides: weight files on disk and the defaults shipped in the package.

A model is the pair ``<name>.safetensors`` (the `VIRNetGuide` state_dict) and ``<name>.json``
(metadata: {"format": WEIGHTS_FORMAT, "model_config": ..., "guide_config": ..., "training":
...}), as written by training with `training.checkpoint.save_weights`. Nothing is unpickled:
a torch.save file is refused. Defaults live in ``virnet/weights/`` (package data) under names
such as "denoise", "sr-x2", "sr-x4". A training checkpoint (``RUN/checkpoints/ckpt_*``)
loads as the guide it holds, so a run can be evaluated before it ends. `import_official`
converts the authors' released checkpoints (`virnet.official`) into this format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from generative.config import ModelConfig
from guides.guide import GuideConfig, VIRNetGuide
from training.checkpoint import CHECKPOINT_FORMAT, WEIGHTS_FORMAT, load_checkpoint, load_weights, save_weights
from virnet import official
from virnet.errors import VirnetError

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

    path_or_name: a ``.safetensors`` file (with its ``.json`` beside it; exported weights or
    a training checkpoint) or the name of an embedded default ("denoise", "sr-x4", ...; see
    `embedded_models`). The guide's `model_config` and `guide_config` come from the JSON
    metadata (a checkpoint's: from the run's config).
    Raises VirnetError (one line, naming the file) for a missing, corrupted, pickled or
    inconsistent model file, or one whose weights hold NaN or infinite values.
    """
    path = resolve_weights(path_or_name)
    try:
        state, metadata = load_weights(path, device=device)
        if isinstance(metadata, dict) and metadata.get("format") == CHECKPOINT_FORMAT:
            state, metadata = _checkpoint_guide(path, device)
    except ValueError as error:
        raise VirnetError(f"cannot load model {path}: {error}") from None
    broken = [name for name, tensor in state.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
    if broken:
        raise VirnetError(
            f"cannot load model {path}: {len(broken)} of its {len(state)} weight tensors hold NaN or infinite "
            f"values (first: {broken[0]}); the model is broken (did its training diverge?)"
        )
    guide = _build_guide(metadata, path)
    try:
        guide.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:300]
        raise VirnetError(
            f"cannot load model {path}: weights do not match the configuration in its JSON ({detail})"
        ) from None
    return guide.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)


def _checkpoint_guide(path: Path, device) -> tuple[dict[str, torch.Tensor], dict]:
    """(the guide's state_dict, weights metadata) of a training checkpoint."""
    state = load_checkpoint(path, device)
    config = state.get("config")
    if not isinstance(config, dict) or not all(isinstance(config.get(k), dict) for k in ("model", "guide")):
        raise ValueError("the checkpoint holds no model and guide configuration")
    training = {"preset": config.get("name"), "step": state["step"], "checkpoint": True}
    metadata = {"format": WEIGHTS_FORMAT, "model_config": config["model"], "guide_config": config["guide"],
                "training": training}
    return state["model"], metadata


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


def import_official(
    checkpoint: str | Path, output: str | Path, task: str, scale: int | None = None, overwrite: bool = False
) -> Path:
    """Convert a checkpoint released with the public implementation into our model format.

    checkpoint: ``virnet_denoising_syn.pth`` (task "denoise"), ``virnet_denoising_real.pth``
    ("denoise-real") or ``virnet_sisr_x{scale}.pth`` ("sr", with `scale` 2, 3 or 4): a dict
    with ``model_state_dict`` (keys possibly prefixed ``module.``) or a bare state dict, read
    with ``torch.load(..., weights_only=True)``. output: the ``.safetensors`` path to write
    (with its ``.json``), which `load_model` and every ``--model`` option then read; existing
    files are kept unless `overwrite`. The guide gets the paper-size configuration of the
    task and the model the public configuration's hyper-parameters (`virnet.official`).
    Returns the output path. Raises VirnetError (one line, nothing written) for a file that
    is not such a checkpoint, a checkpoint of another task, missing or unexpected keys
    (named) and wrong shapes.
    """
    official.check_task(task, scale)
    output = Path(output)
    if output.suffix != WEIGHTS_SUFFIX:
        raise VirnetError(f"the output must be a {WEIGHTS_SUFFIX} file (its .json is written beside it), got {output}")
    existing = [p for p in (output, output.with_suffix(".json")) if p.exists()]
    if existing and not overwrite:
        raise VirnetError(f"{existing[0]} exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise VirnetError(f"output folder {output.parent} does not exist")
    checkpoint = Path(checkpoint)
    state = official.read_released_checkpoint(checkpoint)
    guide = official.official_guide(state, task, scale, source=str(checkpoint))
    metadata = {
        "format": WEIGHTS_FORMAT,
        "model_config": guide.model_config.to_dict(),
        "guide_config": guide.guide_config.to_dict(),
        "source": {
            "kind": "released checkpoint of the public implementation",
            "release": official.RELEASE_URL,
            "file": checkpoint.name,
            "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
            "task": task,
            "scale": scale,
        },
    }
    save_weights(output, guide.state_dict(), metadata)
    return output
