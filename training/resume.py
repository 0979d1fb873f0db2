"""The rules for continuing a run: which checkpoint, whether it fits, and the log's cut.

A run folder's history is never destroyed: `--resume` with nothing readable is an error that
names what it found; a fallback to an older checkpoint is said; metrics.csv keeps its rows up
to the resumed step byte for byte and is appended to after it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from training.checkpoint import ResumePoint, find_resume_point
from training.config import TrainConfig

# Config sections that decide the shapes of the saved tensors: they must not change.
ARCHITECTURE_SECTIONS = ("model", "guide")


def resume_point(checkpoints: Path, config: TrainConfig, device="cpu") -> ResumePoint:
    """The newest readable checkpoint in `checkpoints`, checked against `config`.

    Raises ValueError when nothing is readable (naming what was found), when the checkpoint
    was trained with another model or guide configuration, or when it is already beyond
    ``config.optim.steps``.
    """
    point = find_resume_point(checkpoints, device)
    saved, current = point.state.get("config") or {}, config.to_dict()
    changed = [
        f"{section}.{key} {saved[section][key]!r} -> {value!r}"
        for section in ARCHITECTURE_SECTIONS
        for key, value in current[section].items()
        if key in saved.get(section, {}) and saved[section][key] != value
    ]
    if changed:
        raise ValueError(
            f"cannot resume from {point.path}: it was trained with another model or guide ({', '.join(changed)}); "
            "give the run's own --config and overrides, or another --out"
        )
    if point.state["step"] > config.optim.steps:
        raise ValueError(
            f"cannot resume from {point.path}: it is at step {point.state['step']}, beyond optim.steps = "
            f"{config.optim.steps}; raise --steps to continue the run"
        )
    return point


def cut_log_after(path: Path, step: int) -> tuple[str, ...]:
    """Truncate a metrics.csv after its last complete row of a step ≤ `step`; returns its
    columns. Later rows, and a last line torn by a kill, belong to work that is redone."""
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    header = next(csv.reader([lines[0].decode(errors="replace")]))
    if "step" not in header or not lines[0].endswith(b"\n"):
        raise ValueError(f"cannot resume: {path} is not a metrics log (no header line with a step column)")
    column, keep = header.index("step"), len(lines[0])
    for line in lines[1:]:
        fields = next(csv.reader([line.decode(errors="replace")]), [])
        value = fields[column] if len(fields) > column else ""
        if not line.endswith(b"\n") or not value.isdigit() or int(value) > step:
            break
        keep += len(line)
    if keep < len(data):
        with path.open("r+b") as f:
            f.truncate(keep)
    return tuple(header)
