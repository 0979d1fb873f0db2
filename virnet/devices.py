"""The torch device to run on, from the one vocabulary of `--device` and `device=`."""

from __future__ import annotations

import torch

from virnet.errors import VirnetError

DEVICE_NAMES = "cpu, cuda, cuda:N or auto"


def resolve_device(name: str | torch.device) -> torch.device:
    """"auto" -> cuda when available, else cpu; otherwise the named device, which must exist.

    Raises VirnetError for an unknown name, a device type other than cpu/cuda, CUDA asked
    for without CUDA, or a CUDA index beyond the devices present.
    """
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, (str, torch.device)):
        raise VirnetError(f"device must be a name ({DEVICE_NAMES}) or a torch.device, got {name!r}")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VirnetError(f"unknown device {name!r}; expected {DEVICE_NAMES}") from None
    if device.type not in ("cpu", "cuda"):
        raise VirnetError(f"unsupported device {str(name)!r}; expected {DEVICE_NAMES}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise VirnetError(f"device {name} was asked for, but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise VirnetError(f"device {name} was asked for, but there are {torch.cuda.device_count()} CUDA devices")
    return device
