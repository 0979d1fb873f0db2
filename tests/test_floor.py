"""benchmarks/floor.py: the reference convolution rate and the FLOPs of a tiled restore."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import floor
from tests.checkpoints import tiny_guide
from virnet.tiled_posterior import tile_count

CPU = torch.device("cpu")


def test_restore_flops_of_one_tile_are_the_posteriors_and_tiles_add_their_overlaps():
    guide = tiny_guide()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        guide.posterior(torch.rand(1, 3, 64, 64))
    one_tile = counter.get_total_flops()
    assert floor.restore_flops(guide, 64, 64, tile=64) == one_tile
    assert tile_count(guide, 96, 96, tile=64) == 4  # 64² tiles overlapping by 32 pixels
    assert floor.restore_flops(guide, 96, 96, tile=64) == 4 * one_tile


def test_conv_rate_is_positive_and_the_fraction_divides_the_floor_time_by_the_measured_one():
    assert floor.conv_rate(CPU, repeats=1) > 0
    assert floor.floor_fraction(flops=10e9, rate_gflops=20.0, seconds=1.0) == pytest.approx(0.5)


def test_best_seconds_takes_the_shortest_call_after_a_warm_up():
    calls = []
    assert floor.best_seconds(lambda: calls.append(1), 3, CPU) >= 0
    assert len(calls) == 4
