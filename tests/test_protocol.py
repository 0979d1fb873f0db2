"""The protocol every quality benchmark shares (benchmarks/protocol.py)."""

import torch

from benchmarks import protocol
from tests.checkpoints import tiny_guide


def test_the_benchmarks_run_the_model_in_float32_on_any_cpu(monkeypatch):
    """restore's "auto" precision is bf16 on CPUs with native bf16; a benchmark figure must
    not depend on which CPU measured it."""
    precisions, real_restore = [], protocol.restore
    monkeypatch.setattr(protocol, "restore", lambda *a, **k: precisions.append(k.get("precision")) or real_restore(*a, **k))
    x = torch.rand(3, 16, 16)
    output = protocol.model_method(tiny_guide())(protocol.Case("flat", x, x))
    assert precisions == ["fp32"] and output.image.shape == (3, 16, 16)
