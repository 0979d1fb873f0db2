"""Weights and training checkpoints as safetensors + JSON: nothing is ever unpickled.

Two kinds of files:

- Weights (`save_weights` / `load_weights`): ``name.safetensors`` holds a flat state_dict and
  ``name.json`` its metadata (config, provenance, ...).
- Training checkpoints (`save_checkpoint` / `load_checkpoint`): every piece of training state
  (model, optimizer, scheduler, RNG, config, metrics) in ``ckpt_{step:08d}.safetensors``
  (all tensors, under name-prefixed keys such as ``optimizer/state/0/exp_avg``) and
  ``ckpt_{step:08d}.json`` (everything else, with a placeholder where each tensor was).
  The JSON is written last and is the commit marker: a checkpoint without it is incomplete.
  `find_resume_point` picks the newest checkpoint that reads back completely and says which
  newer ones could not be read.

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a crash never leaves a half-written file under a final name. The JSON
encoding keeps Python types that JSON lacks (tuples, dicts with int keys such as an
optimizer's ``state``), so ``optimizer.load_state_dict`` and ``scheduler.load_state_dict``
accept what `load_checkpoint` returns.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

# A model file: <name>.safetensors (the guide's state_dict) + <name>.json (this format, the
# model and guide configs, the training summary), read by virnet.models.load_model.
WEIGHTS_FORMAT = "virnet-pyro-weights/1"
CHECKPOINT_FORMAT = "virnet-pyro checkpoint"
CHECKPOINT_VERSION = 1
_CHECKPOINT_JSON = re.compile(r"^ckpt_(\d{8,})\.json$")
_CHECKPOINT_TENSORS = re.compile(r"^ckpt_(\d{8,})\.safetensors$")
_TEMP_PREFIX = ".ckpt_"
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"
_MARKERS = (_TENSOR, _TUPLE, _ITEMS)


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], metadata: dict) -> None:
    """Write `state_dict` to `path` (.safetensors) and `metadata` to path.with_suffix(".json").

    state_dict: tensor name -> tensor (any device; saved from a CPU copy). metadata must be
    JSON-serialisable. Both files are written atomically, the JSON last.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"weights file must end in .safetensors, got {path.name}")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ValueError("state_dict must map str names to tensors")
    try:
        metadata_text = json.dumps(metadata, indent=2)
    except TypeError as error:
        raise ValueError(f"metadata is not JSON-serialisable: {error}") from None
    tensors = {name: _cpu_copy(tensor) for name, tensor in state_dict.items()}
    _atomic_write(path, safetensors.torch.save(tensors))
    _atomic_write(path.with_suffix(".json"), metadata_text.encode())


def load_weights(path: Path, device="cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read weights written by `save_weights`: returns (state_dict on `device`, metadata)."""
    path = Path(path)
    json_path = path.with_suffix(".json")
    tensors = _read_tensors(path, device)
    if not json_path.is_file():
        raise ValueError(f"metadata file {json_path} is missing (expected beside {path.name})")
    return tensors, _read_json(json_path)


def save_checkpoint(directory: Path, step: int, state: dict, keep: int = 3) -> Path:
    """Write the training state of `step` as one checkpoint; returns its .safetensors path.

    state: a dict of nested dicts/lists/tuples of tensors and JSON scalars, conventionally
    {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
    "scheduler": scheduler.state_dict(), "rng": capture_rng(), "config": {...},
    "metrics": {...}}; "model" is required, "step" is reserved (it is passed separately).
    After the new checkpoint is complete, all but the `keep` most recent complete ones are
    deleted, as are incomplete leftovers of earlier steps.
    """
    directory = Path(directory)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be a positive integer, got {keep!r}")
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError("state must be a dict with at least a 'model' entry")
    if "step" in state:
        raise ValueError("state must not contain 'step': pass the step as an argument")
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(state, "", tensors)
    blob = safetensors.torch.save(tensors)
    directory.mkdir(parents=True, exist_ok=True)
    tensors_path = directory / f"ckpt_{step:08d}.safetensors"
    json_path = tensors_path.with_suffix(".json")
    json_path.unlink(missing_ok=True)  # re-saving a step: un-commit the old one first
    _atomic_write(tensors_path, blob)
    record = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": step,
        "tensors_file": tensors_path.name,
        "tensors_bytes": len(blob),
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        "state": encoded,
    }
    _atomic_write(json_path, json.dumps(record).encode())
    _prune(directory, step, keep)
    return tensors_path


def latest_checkpoint(directory: Path) -> Path | None:
    """The .safetensors path of the complete checkpoint with the highest step, or None.

    A checkpoint is complete when its JSON exists and its tensor file has the recorded size;
    temporary files and tensor files without JSON are ignored. A missing folder gives None.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    for step in sorted(_committed_steps(directory), reverse=True):
        json_path = directory / f"ckpt_{step:08d}.json"
        tensors_path = json_path.with_suffix(".safetensors")
        try:
            expected = json.loads(json_path.read_text())["tensors_bytes"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if tensors_path.is_file() and tensors_path.stat().st_size == expected:
            return tensors_path
    return None


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run continues from: its loaded state (as `load_checkpoint` returns it),
    its path, and "<name> (<why>)" for each newer checkpoint that could not be read."""

    state: dict
    path: Path
    skipped: tuple[str, ...]


def find_resume_point(directory: Path, device="cpu") -> ResumePoint:
    """The newest checkpoint in `directory` that loads completely (JSON, then the size and
    SHA-256 of its tensor file), newer unreadable ones listed in `skipped`.

    Raises ValueError naming what was found when nothing can be resumed: a missing folder, a
    folder without checkpoints, or every checkpoint with the reason it cannot be read.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"nothing to resume: there is no checkpoint folder {directory}")
    found = (_CHECKPOINT_JSON.match(p.name) or _CHECKPOINT_TENSORS.match(p.name) for p in directory.iterdir())
    steps = {int(match.group(1)) for match in found if match}
    if not steps:
        raise ValueError(f"nothing to resume: {directory} holds no checkpoint (ckpt_<step>.json + .safetensors)")
    skipped = []
    for step in sorted(steps, reverse=True):
        path = directory / f"ckpt_{step:08d}.safetensors"
        try:
            return ResumePoint(load_checkpoint(path, device), path, tuple(skipped))
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:
            reason = " ".join(str(error).split()).replace(str(directory) + os.sep, "")
            skipped.append(f"{path.stem} ({reason or type(error).__name__})")
    raise ValueError(
        f"nothing to resume: none of the {len(steps)} checkpoints in {directory} can be read: {'; '.join(skipped)}"
    )


def load_checkpoint(path: Path, device="cpu") -> dict:
    """Read a checkpoint (its .safetensors or .json path) back into the saved nested state.

    Returns the dict given to `save_checkpoint` plus "step" (int); tensors are on `device`,
    tuples, int dict keys, ints, floats and lists come back as they were saved.
    """
    path = Path(path)
    json_path, tensors_path = path.with_suffix(".json"), path.with_suffix(".safetensors")
    if not json_path.is_file():
        raise ValueError(f"checkpoint {json_path.name} is missing: the checkpoint is incomplete or absent")
    record = _read_json(json_path)
    if record.get("format") != CHECKPOINT_FORMAT or record.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{json_path} is not a {CHECKPOINT_FORMAT} (version {CHECKPOINT_VERSION})")
    blob = _read_bytes(tensors_path)
    if len(blob) != record["tensors_bytes"] or hashlib.sha256(blob).hexdigest() != record["tensors_sha256"]:
        raise ValueError(f"checkpoint tensors {tensors_path} do not match their JSON (truncated or corrupted)")
    tensors = {name: t.to(device) for name, t in _deserialize(blob, tensors_path).items()}
    state = _decode(record["state"], tensors)
    state["step"] = record["step"]
    return state


def capture_rng() -> dict:
    """The global RNG states: torch CPU, CUDA (all devices, if CUDA is initialised), numpy's
    legacy global generator and Python's `random`, in a form `save_checkpoint` can store."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "name": name,
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }


def restore_rng(rng_state: dict) -> None:
    """Set the global RNGs from a `capture_rng` dict (as saved or as loaded, any device).

    CUDA states are restored for the devices present (none without CUDA).
    """
    missing = {"torch", "cuda", "numpy", "python"} - set(rng_state)
    if missing:
        raise ValueError(f"RNG state lacks {sorted(missing)}")
    torch.set_rng_state(rng_state["torch"].cpu())
    if rng_state["cuda"] and torch.cuda.is_available():
        for index, cuda_state in enumerate(rng_state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)
    numpy_state = rng_state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            np.asarray(numpy_state["keys"], dtype=np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = rng_state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))


def _encode(value, key: str, tensors: dict[str, torch.Tensor]):
    """JSON form of `value`; each tensor goes to `tensors[key]` and leaves {"__tensor__": key}."""
    if isinstance(value, torch.Tensor):
        if key in tensors:
            raise ValueError(f"two entries of the state map to the same tensor name {key!r}")
        tensors[key] = _cpu_copy(value)
        return {_TENSOR: key}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise ValueError(f"state dict keys must be str or int, got {k!r} under {key!r}")
        children = {k: _encode(v, f"{key}/{k}" if key else str(k), tensors) for k, v in value.items()}
        if all(isinstance(k, str) and k not in _MARKERS for k in value):
            return children
        return {_ITEMS: [[k, v] for k, v in children.items()]}
    raise ValueError(f"cannot store a {type(value).__name__} (under {key!r}) in a checkpoint")


def _decode(value, tensors: dict[str, torch.Tensor]):
    """Inverse of `_encode`."""
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {_TENSOR}:
        name = value[_TENSOR]
        if name not in tensors:
            raise ValueError(f"checkpoint tensor {name!r} is missing from the tensor file")
        return tensors[name]
    if set(value) == {_TUPLE}:
        return tuple(_decode(v, tensors) for v in value[_TUPLE])
    if set(value) == {_ITEMS}:
        return {k: _decode(v, tensors) for k, v in value[_ITEMS]}
    return {k: _decode(v, tensors) for k, v in value.items()}


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU copy with its own storage (safetensors refuses shared storage)."""
    return tensor.detach().to("cpu", copy=True).contiguous()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename."""
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes it owner-only; use the usual mode
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path.read_bytes()


def _read_tensors(path: Path, device) -> dict[str, torch.Tensor]:
    blob = _read_bytes(path)
    return {name: t.to(device) for name, t in _deserialize(blob, path).items()}


def _deserialize(blob: bytes, path: Path) -> dict[str, torch.Tensor]:
    """Parse safetensors bytes; refuses pickles (torch.save output) without unpickling them."""
    if not _looks_like_safetensors(blob):
        if blob[:2] == b"PK" or (blob[:1] == b"\x80" and blob[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
            raise ValueError(
                f"{path} is a pickled PyTorch file (torch.save); it is refused because unpickling "
                "can run arbitrary code - convert it to safetensors"
            )
        raise ValueError(f"{path} is not a valid safetensors file (corrupted or truncated)")
    try:
        return safetensors.torch.load(blob)
    except safetensors.SafetensorError as error:
        raise ValueError(f"{path} is not a valid safetensors file (corrupted or truncated): {error}") from None


def _looks_like_safetensors(blob: bytes) -> bool:
    """Header check: 8-byte little-endian header size, then a JSON object within the file."""
    if len(blob) < 9:
        return False
    header_size = int.from_bytes(blob[:8], "little")
    return 8 + header_size <= len(blob) and blob[8:9] == b"{"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read JSON file {path}: {error}") from None


def _committed_steps(directory: Path) -> list[int]:
    return [int(m.group(1)) for p in directory.iterdir() if (m := _CHECKPOINT_JSON.match(p.name))]


def _prune(directory: Path, newest: int, keep: int) -> None:
    """Delete all but the `keep` highest-step complete checkpoints (never `newest`), then
    tensor files without JSON and temporary files left by interrupted saves before `newest`."""
    kept = set(sorted(_committed_steps(directory), reverse=True)[:keep]) | {newest}
    for step in _committed_steps(directory):
        if step not in kept:
            (directory / f"ckpt_{step:08d}.json").unlink(missing_ok=True)
            (directory / f"ckpt_{step:08d}.safetensors").unlink(missing_ok=True)
    committed = set(_committed_steps(directory))
    for path in directory.iterdir():
        orphan = _CHECKPOINT_TENSORS.match(path.name)
        if orphan and int(orphan.group(1)) < newest and int(orphan.group(1)) not in committed:
            path.unlink(missing_ok=True)
        elif path.name.startswith(_TEMP_PREFIX) and path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)
