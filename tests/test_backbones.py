"""Table 14 backbones: drop-in replacements of RNet with its call signature and global residual."""

import pytest
import torch

from benchmarks.backbones import DnCNN, UNet, replace_rnet
from guides.rnet import RNet
from tests.checkpoints import tiny_guide


@pytest.mark.parametrize("network", [DnCNN(3, 1, features=8, depth=4), UNet(3, 1, widths=(8, 16, 32))])
def test_backbones_map_any_size_to_the_same_size_and_read_the_cond_map(network):
    x, cond = torch.rand(2, 3, 13, 22), torch.rand(2, 1, 13, 22)
    out = network.eval()(x, cond)
    assert out.shape == x.shape
    assert not torch.allclose(network(x, cond + 1), out)
    with pytest.raises(ValueError, match="cond map with 1 channels"):
        network(x, None)


@pytest.mark.parametrize("network", [DnCNN(3, 0, features=8, depth=3), UNet(3, 0, widths=(8, 16))])
def test_a_zero_tail_makes_a_backbone_the_identity(network):
    tail = network.body[-1] if isinstance(network, DnCNN) else network.tail
    torch.nn.init.zeros_(tail.weight)
    torch.nn.init.zeros_(tail.bias)
    x = torch.rand(1, 3, 12, 12)
    assert torch.equal(network.eval()(x), x)


def test_unet_pads_to_its_multiple():
    assert UNet(3, 0, widths=(8, 16, 32)).multiple == 4
    assert DnCNN(3, 0, features=8, depth=3).multiple == 1


@pytest.mark.parametrize("backbone, kind", [("dncnn", DnCNN), ("unet", UNet), ("resunet", RNet)])
def test_replace_rnet_puts_the_backbone_in_the_guide(backbone, kind):
    guide = replace_rnet(tiny_guide(), backbone, dncnn_depth=3)
    assert isinstance(guide.rnet, kind)
    y = torch.rand(1, 3, 16, 16)
    assert guide.posterior(y).mu.shape == y.shape


def test_replace_rnet_refuses_an_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone 'swinir'"):
        replace_rnet(tiny_guide(), "swinir")
