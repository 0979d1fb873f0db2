"""The authors' released VIRNet checkpoints as guides of our probabilistic program.

The public implementation (https://github.com/zsyOAOA/VIRNet) releases
``virnet_denoising_syn.pth``, ``virnet_denoising_real.pth`` and ``virnet_sisr_x{2,3,4}.pth``
(https://github.com/zsyOAOA/VIRNet/releases/tag/v1.0): torch.save dicts whose
``model_state_dict`` holds the weights of its SNet, KNet and RNet under the keys
``SNet.*``, ``KNet.*``, ``RNet.*`` (``module.``-prefixed when saved from DDP). Our networks
follow the public ones layer for layer with the same parameter names, so a key maps to ours
by its first component alone: ``SNet.conv1.weight`` -> ``snet.conv1.weight``.

`read_released_checkpoint` reads such a file with ``torch.load(..., weights_only=True)``
(tensors and plain containers only: no code runs); `official_guide` checks the keys and
shapes against the public configuration of a task and returns our guide with the weights.
Every refusal is a `VirnetError` of one line that names what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generative.config import SR_SCALES, ModelConfig, denoising_config, sr_config
from guides.guide import VIRNetGuide, paper_guide_config
from virnet.errors import VirnetError

OFFICIAL_TASKS = ("denoise", "denoise-real", "sr")
RELEASE_URL = "https://github.com/zsyOAOA/VIRNet/releases/tag/v1.0"
RELEASED_FILES = {
    "denoise": "virnet_denoising_syn.pth",
    "denoise-real": "virnet_denoising_real.pth",
    "sr": "virnet_sisr_x{scale}.pth",
}
NETWORK_NAMES = {"SNet": "snet", "KNet": "knet", "RNet": "rnet"}  # public -> ours
DDP_PREFIX = "module."
SR_WINDOW = 9  # var_window of the public sisr_x*.json (α0 = 81/2); the paper's text says p = 11
SHOWN_KEYS = 4  # how many offending keys an error names


def official_model_config(task: str, scale: int | None = None) -> ModelConfig:
    """The model hyper-parameters the released weights were trained with (the public
    configs): denoising ε0² = 1e-6, p = 7 (σ² with 3 channels for real noise); SR at
    `scale`: ε0² = 1e-5, p = 9, κ0 = 50, r0² = 1e-4, 21×21 kernels, bicubic ↓s."""
    check_task(task, scale)
    if task == "sr":
        return sr_config(scale, window=SR_WINDOW)
    return denoising_config(sigma_channels=3 if task == "denoise-real" else 1)


def check_task(task: str, scale: int | None) -> None:
    """Raise VirnetError unless (task, scale) names a released configuration."""
    if task not in OFFICIAL_TASKS:
        expected = ", ".join(OFFICIAL_TASKS)
        raise VirnetError(f"unknown task {task!r} for a released checkpoint; expected one of {expected}")
    if task == "sr" and scale not in SR_SCALES:
        raise VirnetError(
            f"--task sr needs --scale 2, 3 or 4 (the factor of the released virnet_sisr_x<scale>.pth), got {scale}"
        )
    if task != "sr" and scale is not None:
        raise VirnetError(f"--scale is for --task sr; a {task} checkpoint has no scale")


def our_key(public_key: str) -> str | None:
    """``[module.]SNet.conv1.weight`` -> ``snet.conv1.weight``; None for a key outside the
    three networks."""
    key = public_key.removeprefix(DDP_PREFIX)
    network, dot, rest = key.partition(".")
    return f"{NETWORK_NAMES[network]}.{rest}" if dot and network in NETWORK_NAMES else None


def public_key(key: str) -> str:
    """Inverse of `our_key`: ``snet.conv1.weight`` -> ``SNet.conv1.weight``."""
    network, _, rest = key.partition(".")
    public = {ours: theirs for theirs, ours in NETWORK_NAMES.items()}
    return f"{public[network]}.{rest}"


def read_released_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a released checkpoint (a dict with ``model_state_dict``, or a bare
    state dict), read without unpickling code; keys as in the file, ``module.`` removed."""
    path = Path(path)
    if not path.is_file():
        raise VirnetError(f"no such checkpoint file: {path}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 — a file that is not a checkpoint fails in the unpickler in many ways
        detail = " ".join(str(error).split())[:200]
        raise VirnetError(
            f"{path} is not a PyTorch checkpoint that loads as plain tensors "
            f"(torch.load with weights_only=True refused it: {detail})"
        ) from None
    state = content.get("model_state_dict", content) if isinstance(content, dict) else content
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VirnetError(
            f"{path} is not a VIRNet checkpoint: expected a dict with 'model_state_dict' or a state dict of tensors"
        )
    return {str(k).removeprefix(DDP_PREFIX): v for k, v in state.items()}


def official_guide(state: dict[str, torch.Tensor], task: str, scale: int | None = None, source: str = "checkpoint"):
    """Our guide of the public configuration of `task` (and SR `scale`) with the weights of a
    released state dict (public key names, as `read_released_checkpoint` returns them).

    Raises VirnetError, naming the keys, for a checkpoint of another task, missing or
    unexpected keys, or a shape that is not the public configuration's.
    """
    model_config = official_model_config(task, scale)
    guide = VIRNetGuide(model_config, paper_guide_config(task))
    _check_task_of_keys(state, task, source)
    renamed = {our_key(k): v for k, v in state.items()}
    unexpected = sorted(k for k in state if our_key(k) is None or our_key(k) not in guide.state_dict())
    expected = guide.state_dict()
    missing = sorted(public_key(k) for k in expected if k not in renamed)
    if missing:
        raise VirnetError(f"{source} lacks {len(missing)} weight(s) of the {task} network: {_names(missing)}")
    if unexpected:
        raise VirnetError(
            f"{source} has {len(unexpected)} unexpected key(s) for the {task} network: {_names(unexpected)}"
        )
    wrong = [
        f"{public_key(k)} is {tuple(v.shape)}, expected {tuple(expected[k].shape)}"
        for k, v in renamed.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise VirnetError(f"{source} does not have the {task} configuration's shapes: {'; '.join(wrong[:SHOWN_KEYS])}")
    if not all(v.is_floating_point() for v in renamed.values()):
        raise VirnetError(f"{source} holds non-floating-point weights")
    guide.load_state_dict({k: v.float() for k, v in renamed.items()}, strict=True)
    return guide.eval().requires_grad_(False)


def _check_task_of_keys(state: dict[str, torch.Tensor], task: str, source: str) -> None:
    """Refuse a checkpoint of another task before comparing keys one by one."""
    has_knet = any(k.startswith("KNet.") for k in state)
    if has_knet and task != "sr":
        raise VirnetError(f"{source} has KNet weights: it is a super-resolution checkpoint; pass --task sr --scale N")
    if not has_knet and task == "sr" and any(k.startswith("SNet.") for k in state):
        raise VirnetError(f"{source} has no KNet weights: it is a denoising checkpoint, not --task sr")
    sigma = state.get("SNet.conv_last.weight")
    if task in ("denoise", "denoise-real") and sigma is not None and sigma.dim() == 4:
        kind = {1: ("synthetic-noise", "denoise"), 3: ("real-noise", "denoise-real")}.get(sigma.shape[0])
        if kind is not None and kind[1] != task:
            channels = sigma.shape[0]
            raise VirnetError(
                f"{source} estimates a {channels}-channel σ² map: it is the {kind[0]} denoiser; pass --task {kind[1]}"
            )


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")
