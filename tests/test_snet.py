import math

import pytest
import torch

from guides.snet import SNet


def _image(h=37, w=45, c=3, b=2):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("out_channels", [1, 3])
def test_output_shape_matches_input_size(out_channels):
    net = SNet(in_channels=3, out_channels=out_channels, features=8, depth=3)
    assert net(_image()).shape == (2, out_channels, 37, 45)


def test_depth_counts_convolutions_with_leaky_relu_between():
    net = SNet(features=8, depth=5)
    kinds = [type(m).__name__ for m in net.body]
    assert kinds == ["Conv2d", "LeakyReLU"] * 4 + ["Conv2d"]
    assert all(m.negative_slope == 0.25 for m in net.body if isinstance(m, torch.nn.LeakyReLU))


def test_depth_below_two_is_rejected():
    with pytest.raises(ValueError):
        SNet(depth=1)


def test_initial_beta_is_a_small_plausible_variance():
    beta = SNet(features=8, depth=5)(_image())
    assert beta.min() > 1e-4 and beta.max() < 1e-2


def test_beta_is_positive_and_clamped_to_range():
    net = SNet(features=8, depth=3)
    last = net.body[-1]
    with torch.no_grad():
        last.bias.fill_(100.0)
    assert torch.allclose(net(_image()), torch.full((2, 1, 37, 45), 1e2))
    with torch.no_grad():
        last.bias.fill_(-100.0)
    beta = net(_image())
    assert (beta > 0).all()
    assert torch.allclose(beta, torch.full_like(beta, 1e-10))


def test_global_average_is_constant_map_of_geometric_mean():
    local = SNet(out_channels=3, features=8, depth=3)
    with torch.no_grad():
        local.body[-1].weight.mul_(100.0)  # make the per-pixel map clearly non-constant
    pooled = SNet(out_channels=3, features=8, depth=3, global_average=True)
    pooled.load_state_dict(local.state_dict())
    y = _image()
    beta_local, beta_pooled = local(y), pooled(y)
    assert beta_local.std(dim=(-2, -1)).min() > 0
    assert beta_pooled.shape == (2, 3, 37, 45)
    assert torch.equal(beta_pooled, beta_pooled[..., :1, :1].expand_as(beta_pooled))
    expected = beta_local.log().mean(dim=(-2, -1)).exp()
    assert torch.allclose(beta_pooled[..., 0, 0], expected, rtol=1e-5)


def test_gradients_reach_every_parameter():
    net = SNet(features=8, depth=4, global_average=True)
    net(_image()).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_beta_is_exp_of_last_layer_output():
    net = SNet(features=8, depth=3)
    with torch.no_grad():
        net.body[-1].bias.fill_(math.log(0.5))
        net.body[-1].weight.zero_()
    assert torch.allclose(net(_image()), torch.full((2, 1, 37, 45), 0.5))
