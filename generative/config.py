"""Hyper-parameters of the Bayesian generative model (Sec. 3 and Sec. 5 of the paper)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

TASKS = ("denoise", "sr")
SR_SCALES = (2, 3, 4)
# ↓s of Eq. 7: "direct" keeps one pixel per s×s block (Eq. 26), "bicubic" is antialiased.
DOWNSAMPLERS = ("direct", "bicubic")
# Each task's model hyper-parameters (Sec. 5, DESIGN.md): the one place they are defined.
# Bicubic is the SR downsampler because the published SR tables were made with it
# (DESIGN.md, "Benchmark protocols"); "direct" follows Eq. 26's text.
TASK_DEFAULTS = {
    "denoise": {"eps0_sq": 1e-6, "window": 7, "downsampler": "direct"},
    "sr": {"eps0_sq": 1e-5, "window": 11, "downsampler": "bicubic"},
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything the model p(y, z, σ², Λ | x) needs besides the data.

    Denoising is the special case ``scale == 1`` with the delta kernel (no Λ sites).
    """

    task: str = "denoise"
    scale: int = 1
    eps0_sq: float = TASK_DEFAULTS["denoise"]["eps0_sq"]  # ε0², closeness of z to the clean image x (Eq. 3)
    window: int = TASK_DEFAULTS["denoise"]["window"]  # p, window of the Gaussian filter in ξ (Eq. 5); α0 = p²/2
    kappa0: float = 50.0  # κ0, shape of the kernel-width prior (Eq. 11)
    r0_sq: float = 1e-4  # r0², variance of the correlation prior (Eq. 11)
    kernel_size: int = 21  # 2r + 1, side of the kernel grid (Eq. 8)
    downsampler: str = TASK_DEFAULTS["denoise"]["downsampler"]  # ↓s of Eq. 7: "direct" (Eq. 26) or "bicubic"
    image_channels: int = 3
    sigma_channels: int = 1  # 1: one σ² per pixel for all channels; 3: per channel (real noise)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        if self.downsampler not in DOWNSAMPLERS:
            raise ValueError(f"unknown downsampler {self.downsampler!r}; expected one of {DOWNSAMPLERS}")
        if self.task == "denoise" and self.scale != 1:
            raise ValueError("denoising has scale 1")
        if self.task == "sr" and (type(self.scale) is not int or self.scale not in SR_SCALES):
            raise ValueError(f"super-resolution scale must be 2, 3 or 4, not {self.scale}")
        if self.sigma_channels not in (1, self.image_channels):
            raise ValueError("sigma_channels must be 1 or equal to image_channels")
        if self.window < 3 or self.window % 2 == 0:
            raise ValueError("the window p must be an odd integer >= 3")
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd (2r + 1)")
        if min(self.eps0_sq, self.r0_sq) <= 0 or self.kappa0 <= 2:
            raise ValueError("eps0_sq and r0_sq must be positive and kappa0 > 2")

    @classmethod
    def for_task(cls, task: str, scale: int | None = None, **overrides) -> ModelConfig:
        """The config of `task` ("denoise", or "sr" with its scale) with that task's defaults
        (TASK_DEFAULTS); any other field can be given in ``overrides``."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        if scale is None:
            if task == "sr":
                raise ValueError("super-resolution needs a scale (2, 3 or 4)")
            scale = 1
        return cls(task=task, scale=scale, **{**TASK_DEFAULTS[task], **overrides})

    @property
    def alpha0(self) -> float:
        """α0 = p²/2, the strength of the inverse-gamma prior on σ² (Sec. 3.2)."""
        return self.window**2 / 2

    @property
    def has_kernel(self) -> bool:
        """Whether Λ is a latent variable (blind SR) or the kernel is the delta (denoising)."""
        return self.task == "sr"

    def to_dict(self) -> dict:
        return asdict(self)


def denoising_config(**overrides) -> ModelConfig:
    """The paper's denoising setting: ε0² = 1e-6, p = 7 (Sec. 5)."""
    return ModelConfig.for_task("denoise", **overrides)


def sr_config(scale: int, **overrides) -> ModelConfig:
    """The paper's blind SR setting: ε0² = 1e-5, p = 11, κ0 = 50, r0² = 1e-4, bicubic ↓s."""
    return ModelConfig.for_task("sr", scale, **overrides)
