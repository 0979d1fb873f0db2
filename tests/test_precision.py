"""virnet.precision: bf16 only where the hardware has it, and only when asked or natively."""

import pytest
import torch

from virnet import precision
from virnet.errors import VirnetError

CPU = torch.device("cpu")


def test_explicit_precisions_are_kept_and_unknown_ones_refused():
    assert precision.resolve_precision("fp32", CPU) == "fp32"
    assert precision.resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(VirnetError, match="unknown precision 'fp16'"):
        precision.resolve_precision("fp16", CPU)


@pytest.mark.parametrize(
    "flags, onednn, expected",
    [
        (frozenset({"avx2", "fma"}), True, "fp32"),  # AVX2 only: bf16 would be emulated
        (frozenset({"avx512f", "avx512bw"}), True, "fp32"),  # AVX512 without its BF16 extension
        (frozenset({"avx512f", "avx512_bf16"}), True, "bf16"),
        (frozenset({"amx_bf16"}), True, "bf16"),
        (frozenset({"avx512_bf16"}), False, "fp32"),  # PyTorch's kernels cannot use it
    ],
)
def test_auto_takes_bf16_only_on_cpus_with_native_bf16(monkeypatch, flags, onednn, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    monkeypatch.setattr(precision, "_onednn_bf16", lambda: onednn)
    assert precision.resolve_precision("auto", CPU) == expected


def test_this_machines_flags_are_read():
    flags = precision.cpu_flags()
    assert isinstance(flags, frozenset)
    assert precision.native_bf16(torch.device("meta")) is False


def test_autocast_runs_convolutions_in_bf16_only_for_bf16():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with precision.autocast("bf16", CPU):
        assert conv(x).dtype == torch.bfloat16
    with precision.autocast("fp32", CPU):
        assert conv(x).dtype == torch.float32


@pytest.mark.gpu
def test_auto_takes_bf16_on_an_ampere_or_newer_gpu():
    device = torch.device("cuda")
    native = torch.cuda.get_device_capability(device) >= (8, 0)
    assert precision.resolve_precision("auto", device) == ("bf16" if native else "fp32")
