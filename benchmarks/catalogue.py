"""The paper's experiments by name: NAME -> its protocol module.

Each module has NAME, TITLE, ``add_arguments(parser)`` and ``run(args)``; `virnet bench NAME`
(cli/bench.py) and ``python -m benchmarks.<module>`` (module = NAME with "_" for "-")
take the same arguments.
"""

from __future__ import annotations

from benchmarks import (
    ablation,
    calibration,
    denoise_iid,
    denoise_niid,
    denoise_real,
    kernel_estimation,
    noise_estimation,
    profile,
    sr,
)

PROTOCOLS = (
    denoise_niid,
    denoise_iid,
    denoise_real,
    sr,
    noise_estimation,
    kernel_estimation,
    calibration,
    profile,
    ablation,
)
BENCHMARKS = {module.NAME: module for module in PROTOCOLS}
