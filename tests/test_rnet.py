import pytest
import torch

from guides.rnet import RNet

MODES = ["input", "down", "both", "none"]


def _rand(*shape, seed=3):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _small(conditioning, **kwargs):
    kwargs.setdefault("widths", (8, 16, 16))
    kwargs.setdefault("blocks", 1)
    return RNet(in_channels=3, cond_channels=2, out_channels=3, conditioning=conditioning, **kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(37, 45), (32, 32), (3, 5), (2, 3)])
def test_output_shape_for_any_size(mode, size):
    x = _rand(2, 3, *size)
    cond = None if mode == "none" else _rand(2, 2, *size, seed=4)
    assert _small(mode)(x, cond).shape == (2, 3, *size)


def test_none_ignores_cond():
    net = _small("none")
    x = _rand(2, 3, 20, 22)
    out = net(x, None)
    assert torch.equal(out, net(x, _rand(2, 2, 20, 22, seed=5)))
    assert torch.equal(out, net(x, _rand(2, 7, 9, 9, seed=6)))


@pytest.mark.parametrize("mode", ["input", "down", "both"])
def test_cond_changes_output(mode):
    net = _small(mode)
    x = _rand(2, 3, 20, 22)
    out_a = net(x, _rand(2, 2, 20, 22, seed=5))
    out_b = net(x, _rand(2, 2, 20, 22, seed=6))
    assert (out_a - out_b).abs().max() > 1e-4


def test_down_mode_uses_cond_only_inside_blocks():
    net = _small("down")
    assert net.head.in_channels == 3
    assert _small("input").head.in_channels == 5
    assert _small("both").head.in_channels == 5
    assert all(b.modulation is None for stage in net.up_stages for b in stage.blocks)
    assert all(b.modulation is not None for b in net.bottom.blocks)
    assert all(b.modulation is None for b in _small("input").bottom.blocks)


@pytest.mark.parametrize("mode", MODES)
def test_gradients_reach_every_parameter(mode):
    net = _small(mode)
    cond = None if mode == "none" else _rand(2, 2, 17, 19, seed=4)
    net(_rand(2, 3, 17, 19), cond).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("mode", MODES)
def test_global_residual_with_zero_tail_returns_input(mode):
    net = RNet(in_channels=4, cond_channels=1, out_channels=3, widths=(8, 16), blocks=1, conditioning=mode)
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.zero_()
    x = _rand(2, 4, 13, 15)
    cond = None if mode == "none" else _rand(2, 1, 13, 15, seed=4)
    assert torch.equal(net(x, cond), x[:, :3])


def test_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError):
        RNet(conditioning="Input")
    with pytest.raises(ValueError):
        RNet(in_channels=3, out_channels=4)
    net = _small("both")
    x = _rand(1, 3, 16, 16)
    with pytest.raises(ValueError):
        net(x, None)
    with pytest.raises(ValueError):
        net(x, _rand(1, 2, 8, 8))


def test_paper_size_denoiser():
    net = RNet(in_channels=3, cond_channels=1, out_channels=3, widths=(96, 192, 288), blocks=3)
    n_params = sum(p.numel() for p in net.parameters())
    assert 5e6 < n_params < 20e6
    x = _rand(1, 3, 32, 32)
    with torch.no_grad():
        assert net(x, _rand(1, 1, 32, 32)).shape == (1, 3, 32, 32)
