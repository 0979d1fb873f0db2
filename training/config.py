"""Typed training configuration: TOML presets, command-line overrides, the resolved file.

A config has five sections, each a dataclass: ``model`` (generative.config.ModelConfig),
``guide`` (guides.guide.GuideConfig), ``data``, ``optim`` and ``run``. Presets live in
``training/configs/<name>.toml``; any value can be overridden as ``section.key=value``
(the value is read as a TOML literal, e.g. ``optim.lr=2e-4`` or ``guide.rnet_widths=[32,64]``).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from generative.config import ModelConfig
from guides.guide import GuideConfig
from training.degradations import TRAINING_NOISE

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PRESET_DIR = Path(__file__).parent / "configs"
DATA_KINDS = ("synthetic", "paired", "sidd-medium")


@dataclass(frozen=True)
class DataConfig:
    """Where examples come from and how they are degraded (training/data.py, training/degradations.py).

    noise, min_sigma and max_sigma left as None take the model task's training noise
    (training.degradations.TRAINING_NOISE) when the TrainConfig is built, and kernel_patch_size
    left as None becomes patch_size (KNet reads the patch RNet restores).
    """

    kind: str = "synthetic"  # synthetic degradations of clean images, or real noisy/clean pairs
    patch_size: int = 128  # HR patch side
    noise: str | None = None  # denoising: "niid" (bumps + i.i.d.), "iid" or "bump"; SR: "iid"
    min_sigma: float | None = None  # range of the i.i.d. noise std
    max_sigma: float | None = None
    kernel_patch_size: int | None = None  # SR: HR side of the larger patch around each one that KNet reads
    batch_size: int = 16
    workers: int = 2
    holdout: float = 0.1  # fraction of the images held out for validation
    val_images: int = 8  # validation crops scored every run.val_every steps
    val_kernels: int = 64  # SR: whole held-out images, each with its own kernel, for KNet's correlations

    def __post_init__(self) -> None:
        if self.kind not in DATA_KINDS:
            raise ValueError(f"unknown data kind {self.kind!r}; expected one of {DATA_KINDS}")

    def for_task(self, task: str) -> DataConfig:
        """This config with every unset field resolved: the noise from `task`'s training
        noise, the kernel patch as the patch."""
        defaults = {**TRAINING_NOISE[task], "kernel_patch_size": self.patch_size}
        return dataclasses.replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})


@dataclass(frozen=True)
class OptimConfig:
    """Adam with cosine annealing after a linear warm-up; gradient-norm clipping per network."""

    steps: int = 100_000
    lr: float = 1e-4
    lr_min: float = 1e-6
    warmup_steps: int = 1000
    clip: dict = field(default_factory=lambda: {"rnet": 1e3, "snet": 1e2, "knet": 5e2})
    elbo: str = "mc"  # "mc" (Trace_ELBO) or "analytic" (TraceMeanField_ELBO)
    knet_steps: int = 0  # SR: extra KNet steps on the kernel KL after each SVI step (training/kernel_steps.py)
    amp: bool = False  # bfloat16 autocast for the SVI step (on a CPU, only worth it where bf16 is native)
    channels_last: bool = False  # the guide and the batches in channels_last memory format

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"optim.steps must be a positive number of SVI steps, got {self.steps}")
        if self.lr <= 0 or self.lr_min < 0 or self.warmup_steps < 0:
            raise ValueError("optim.lr must be positive, optim.lr_min and optim.warmup_steps non-negative")


@dataclass(frozen=True)
class RunConfig:
    """Bookkeeping: logging, validation and checkpoint intervals, seed."""

    seed: int = 0
    log_every: int = 10
    val_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        for name in ("log_every", "val_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"run.{name} must be a positive integer, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig:
    name: str = "custom"
    model: ModelConfig = ModelConfig()
    guide: GuideConfig = GuideConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    run: RunConfig = RunConfig()

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", self.data.for_task(self.model.task))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"model": ModelConfig, "guide": GuideConfig, "data": DataConfig, "optim": OptimConfig, "run": RunConfig}


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def config_from_dict(values: dict) -> TrainConfig:
    """Build a TrainConfig from nested dicts; unknown sections or keys are errors."""
    unknown = set(values) - set(SECTIONS) - {"name"}
    if unknown:
        raise ValueError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    sections = {}
    for section, cls in SECTIONS.items():
        given = dict(values.get(section, {}))
        known = {f.name for f in dataclasses.fields(cls)}
        extra = set(given) - known
        if extra:
            raise ValueError(f"unknown key(s) in [{section}]: {', '.join(sorted(extra))}")
        _check_types(section, cls, given)
        if section == "model":
            sections[section] = ModelConfig.for_task(given.pop("task", "denoise"), given.pop("scale", None), **given)
        else:
            sections[section] = cls(**given)
    return TrainConfig(name=values.get("name", "custom"), **sections)


def _check_types(section: str, cls: type, given: dict) -> None:
    """Raise ValueError naming the key if a value has the wrong type for its field (an int
    is accepted for a float; annotations this does not understand accept anything)."""
    hints = typing.get_type_hints(cls)
    for key, value in given.items():
        expected = hints[key]
        if not _has_type(value, expected):
            plain = typing.get_origin(expected) is None and hasattr(expected, "__name__")
            name = expected.__name__ if plain else expected
            raise ValueError(f"{section}.{key} must be of type {name}, got {value!r}")


def _has_type(value, expected) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, option) for option in typing.get_args(expected))
    if origin in (tuple, list):
        items = typing.get_args(expected)[:1]
        return isinstance(value, (tuple, list)) and all(_has_type(v, items[0]) for v in value if items)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(expected, type) and origin is None:
        return isinstance(value, expected)
    return True


def parse_override(text: str) -> tuple[str, str, object]:
    """'section.key=value' -> (section, key, value), the value read as a TOML literal."""
    path, sep, raw = text.partition("=")
    section, dot, key = path.strip().partition(".")
    if not sep or not dot or not key:
        raise ValueError(f"override {text!r} is not of the form section.key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word, e.g. data.kind=paired
    return section, key, value


def load_config(name_or_path: str, overrides: list[str] = ()) -> TrainConfig:
    """A preset name (see ``preset_names()``) or a TOML file, with overrides applied."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ValueError(f"unknown preset {name_or_path!r}; available: {', '.join(preset_names())}")
    elif not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"cannot parse {path}: {error}") from None
    for text in overrides:
        section, key, value = parse_override(text)
        values.setdefault(section, {})[key] = value
    return config_from_dict(values)


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved config as TOML (readable by ``load_config``)."""
    path.write_text(tomli_w.dumps(config.to_dict()))
