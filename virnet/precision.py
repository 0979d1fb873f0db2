"""Which arithmetic the networks run in at inference: float32, or bfloat16 autocast.

"auto" takes bfloat16 only where the hardware computes it natively: a CUDA GPU of compute
capability 8.0 or newer, or a CPU with AVX512-BF16 or AMX-BF16 (x86) or the BF16 extension
(ARM). Elsewhere bfloat16 is emulated: on a 2-core AVX2 CPU the reference 3×3 convolution
ran 13× and the shipped models 5-8× slower in bfloat16 than in float32 (benchmarks/
inference.py). bfloat16 is only worth it when it costs no quality: the shipped models
changed by at most 0.006 dB PSNR on the benchmark images (benchmarks/precision_quality.py,
README "Speed and memory"), well under the 0.05 dB allowed. The guide returns its parameters
in float32 either way. Only the standard library is imported at the top (the command line reads
PRECISIONS without torch).
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path
from typing import TYPE_CHECKING

from virnet.errors import VirnetError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "bf16", "auto")
# CPU feature flags (/proc/cpuinfo) that mean native bfloat16 arithmetic.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
_CPUINFO = Path("/proc/cpuinfo")


def resolve_precision(precision: str, device: torch.device) -> str:
    """"fp32" or "bf16" for a --precision value on `device` ("auto": bf16 where native)."""
    if precision not in PRECISIONS:
        raise VirnetError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware (see the module docstring)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return device.type == "cpu" and bool(cpu_flags() & NATIVE_BF16_FLAGS) and _onednn_bf16()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    if platform.system() != "Linux" or not _CPUINFO.is_file():
        return frozenset()
    for line in _CPUINFO.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return frozenset(value.split())
    return frozenset()


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on `device` for a resolved "bf16", nothing for "fp32"."""
    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _onednn_bf16() -> bool:
    """PyTorch's own check that its CPU kernels (oneDNN) can run bfloat16 here."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
