"""virnet.tiled_posterior: the guide's posterior tile by tile, at speed, using only its two stages."""

import pytest
import torch

from generative.config import denoising_config
from guides.guide import GuideConfig, VIRNetGuide
from tests.checkpoints import tiny_guide
from virnet import tiled_posterior as tp


def image(batch=1, height=48, width=40, seed=0):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_traced_memory_grows_with_the_width_and_the_tile_fits_the_budget():
    narrow = VIRNetGuide(denoising_config(), GuideConfig(snet_features=8, rnet_widths=(8, 16), rnet_blocks=1))
    wide = VIRNetGuide(denoising_config(), GuideConfig(snet_features=8, rnet_widths=(32, 64), rnet_blocks=1))
    assert tp.bytes_per_pixel(wide) > 3 * tp.bytes_per_pixel(narrow)
    for guide in (narrow, wide):
        side = tp.tile_side(guide, memory_budget=2**28)
        assert side % guide.padding_multiple == 0
        assert side**2 * tp.bytes_per_pixel(guide) <= 2**28 < (side + guide.padding_multiple) ** 2 * tp.bytes_per_pixel(guide)


def test_channels_last_gives_the_nchw_result_and_leaves_the_weights_in_nchw():
    guide = tiny_guide()
    y = image()
    fast = tp.tiled_posterior(guide, y, tile=16, overlap=8)
    plain = tp.tiled_posterior(guide, y, tile=16, overlap=8, channels_last=False)
    assert torch.allclose(fast.mu, plain.mu, atol=1e-5) and torch.allclose(fast.beta, plain.beta, rtol=1e-4)
    assert all(p.is_contiguous() for p in guide.parameters())


def test_tiles_use_only_the_two_stages_of_the_guide(monkeypatch):
    guide = tiny_guide("sr", 2)
    calls = []
    for stage in ("degradation", "restoration_mean"):
        original = getattr(guide, stage)
        monkeypatch.setattr(guide, stage, lambda *a, _f=original, _n=stage: calls.append(_n) or _f(*a))
    post = tp.tiled_posterior(guide, image(height=40, width=40), tile=16, overlap=8)
    assert calls.count("degradation") == 1  # one estimate of β and Λ per image
    assert calls.count("restoration_mean") == tp.tile_count(guide, 40, 40, tile=16, overlap=8) > 1
    assert post.mu.shape == (1, 3, 80, 80)


def test_progress_shows_a_bar_with_one_step_per_tile(monkeypatch):
    bars = []

    def fake_tqdm(tiles, **options):
        bars.append((len(tiles), options["unit"]))
        return tiles

    monkeypatch.setattr(tp, "tqdm", fake_tqdm)
    guide = tiny_guide()
    tp.tiled_posterior(guide, image(), tile=16, overlap=8, progress=True)
    assert bars == [(tp.tile_count(guide, 48, 40, tile=16, overlap=8), "tile")]
    tp.tiled_posterior(guide, image(), tile=16, overlap=8)
    assert len(bars) == 1


def test_bf16_stays_close_to_fp32_and_returns_float32():
    guide = tiny_guide()
    y = image()
    fp32 = tp.tiled_posterior(guide, y, precision="fp32")
    bf16 = tp.tiled_posterior(guide, y, precision="bf16")
    assert bf16.mu.dtype == torch.float32 and bf16.beta.dtype == torch.float32
    assert (bf16.mu - fp32.mu).abs().max() < 0.05
    assert not torch.equal(bf16.mu, fp32.mu)


def test_results_are_ordinary_tensors_for_one_tile_and_many():
    guide = tiny_guide("sr", 2)
    for tile in (None, 16):
        post = tp.tiled_posterior(guide, image(height=24, width=24), tile=tile, overlap=8)
        for t in (post.mu, post.beta, post.eta, post.m):
            assert not t.is_inference()
        post.mu.clamp_(0, 1)


@pytest.mark.gpu
def test_tiled_restore_on_cuda_matches_the_cpu():
    cpu = tiny_guide()
    gpu = tiny_guide().cuda()
    y = image(height=70, width=50)
    expected = tp.tiled_posterior(cpu, y, tile=32, overlap=8)
    got = tp.tiled_posterior(gpu, y.cuda(), tile=32, overlap=8, precision="fp32")
    assert got.mu.device.type == "cuda"
    assert torch.allclose(got.mu.cpu(), expected.mu, atol=1e-4)
    bf16 = tp.tiled_posterior(gpu, y.cuda(), tile=32, overlap=8, precision="bf16")
    assert (bf16.mu.cpu() - expected.mu).abs().max() < 0.05
