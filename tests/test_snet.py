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


def test_depth_counts_convolutions_with_leaky_relu_after_all_but_the_last():
    net = SNet(features=8, depth=5)
    kinds = [type(m).__name__ for m in net.children()]
    assert kinds == ["Conv2d", "LeakyReLU", "Sequential", "Conv2d"]
    middle = [type(m).__name__ for m in net.mid_layer]
    assert middle == ["Conv2d", "LeakyReLU"] * 3
    assert len(net.convolutions()) == 5
    slopes = [m.negative_slope for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert slopes == [0.25] * 4


def test_parameter_names_are_the_public_implementations():
    names = [n for n, _ in SNet(features=8, depth=4).named_parameters()]
    assert names == [
        "conv1.weight", "conv1.bias", "mid_layer.0.weight", "mid_layer.0.bias",
        "mid_layer.2.weight", "mid_layer.2.bias", "conv_last.weight", "conv_last.bias",
    ]


def test_depth_below_two_is_rejected():
    with pytest.raises(ValueError):
        SNet(depth=1)


def test_initial_beta_is_a_small_plausible_variance():
    beta = SNet(features=8, depth=5)(_image())
    assert beta.min() > 1e-4 and beta.max() < 1e-2


def test_beta_is_positive_and_clamped_to_range():
    net = SNet(features=8, depth=3)
    last = net.conv_last
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
        local.conv_last.weight.mul_(100.0)  # make the per-pixel map clearly non-constant
    pooled = SNet(out_channels=3, features=8, depth=3, global_average=True)
    pooled.load_state_dict(local.state_dict())
    y = _image()
    beta_local, beta_pooled = local(y), pooled(y)
    assert beta_local.std(dim=(-2, -1)).min() > 0
    assert beta_pooled.shape == (2, 3, 37, 45)
    assert torch.equal(beta_pooled, beta_pooled[..., :1, :1].expand_as(beta_pooled))
    expected = beta_local.log().mean(dim=(-2, -1)).exp()
    assert torch.allclose(beta_pooled[..., 0, 0], expected, rtol=1e-5)


def test_global_average_is_taken_before_the_clamp():
    # Half the image at log β = log 1e2 + 20 (clamped alone), half at log 1e2 − 30: the
    # average of the raw map (log 1e2 − 5) is inside the range, so β < 1e2.
    net = SNet(out_channels=1, features=8, depth=2, global_average=True)
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
        net.conv_last.weight[0, 0, 1, 1] = 1.0
        net.conv1.weight.zero_()
        net.conv1.bias.zero_()
        net.conv1.weight[0, 0, 1, 1] = 1.0
    y = torch.zeros(1, 3, 4, 4)
    y[..., :2, :] = math.log(1e2) + 20
    y[..., 2:, :] = (math.log(1e2) - 30) / 0.25  # LeakyReLU(0.25) scales negatives
    beta = net(y)
    assert torch.allclose(beta, torch.full_like(beta, 1e2 * math.exp(-5)), rtol=1e-4)


def test_gradients_reach_every_parameter():
    net = SNet(features=8, depth=4, global_average=True)
    net(_image()).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_beta_is_exp_of_last_layer_output():
    net = SNet(features=8, depth=3)
    with torch.no_grad():
        net.conv_last.bias.fill_(math.log(0.5))
        net.conv_last.weight.zero_()
    assert torch.allclose(net(_image()), torch.full((2, 1, 37, 45), 0.5))
