"""How much bfloat16 inference changes a model's PSNR on the benchmark images.

The four bundled quick images (astronaut, chelsea, coffee, rocket; BSDS-like photos, no
download) at QUALITY_SIDE² are degraded as the denoising and SR benchmarks do: Table 1's
Case 1 non-i.i.d. noise for a denoiser, the first test kernel, bicubic ×s and 2.55/255 noise
for SR. Each is restored in float32 and in bfloat16 autocast; the change is PSNR(bf16) −
PSNR(fp32) against the clean image, in dB. `virnet.precision` lets "auto" choose bf16 only
for changes below 0.05 dB.
"""

from __future__ import annotations

from benchmarks import protocol
from benchmarks.cases import benchmark_kernel_lambdas
from benchmarks.denoise_niid import case_sigma
from benchmarks.metrics import psnr_rgb
from benchmarks.quick_images import quick_images
from benchmarks.sr import KERNEL_SIZE, sr_cases
from generative.kernels import gaussian_kernel
from guides.guide import VIRNetGuide
from virnet.api import restore

QUALITY_SIDE = 256
QUALITY_IMAGES = 4
SR_NOISE = 2.55  # /255
SEED = 0
TOLERANCE_DB = 0.05


def benchmark_cases(guide: VIRNetGuide) -> list[protocol.Case]:
    """The degraded quick images for the guide's task (see the module docstring)."""
    images = quick_images(QUALITY_IMAGES, QUALITY_SIDE)
    scale = guide.model_config.scale
    if scale == 1:
        return protocol.noisy_cases(images, case_sigma(1), SEED)
    lam = benchmark_kernel_lambdas(scale)[:1]
    kernel = gaussian_kernel(lam[:, :2], lam[:, 2], KERNEL_SIZE)[0]
    return sr_cases(images, scale, kernel, SR_NOISE, SEED)


def bf16_psnr_change(guide: VIRNetGuide, tile: int | None = None) -> dict:
    """{"images", "fp32_psnr", "mean_change_db", "max_abs_change_db", "within_tolerance"}."""
    device = next(guide.parameters()).device
    changes, base = [], []
    for case in benchmark_cases(guide):
        y = case.y.to(device)
        psnr = {
            precision: psnr_rgb(restore(y, guide, tile=tile, precision=precision).image[0].clamp(0, 1).cpu(), case.x)
            for precision in ("fp32", "bf16")
        }
        base.append(psnr["fp32"])
        changes.append(psnr["bf16"] - psnr["fp32"])
    worst = max(abs(c) for c in changes)
    return {
        "images": len(changes),
        "fp32_psnr": sum(base) / len(base),
        "mean_change_db": sum(changes) / len(changes),
        "max_abs_change_db": worst,
        "within_tolerance": worst < TOLERANCE_DB,
    }
