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


@pytest.mark.parametrize("mode", ["input", "down", "both"])
def test_a_constant_cond_map_may_be_passed_as_one_pixel(mode):
    net = _small(mode)
    x = _rand(2, 3, 19, 22)
    cond = _rand(2, 2, 1, 1, seed=5)
    assert torch.allclose(net(x, cond), net(x, cond.expand(-1, -1, 19, 22)), atol=1e-6)


def test_cond_of_another_size_is_rejected():
    with pytest.raises(ValueError, match="cond must have shape"):
        _small("down")(_rand(2, 3, 8, 8), _rand(2, 2, 4, 4))


def test_down_mode_uses_cond_only_inside_down_path_blocks():
    net = _small("down")
    assert net.head.in_channels == 3
    assert _small("input").head.in_channels == 5
    assert _small("both").head.in_channels == 5
    assert all(not b.conditioned for stage in net.up_path for b in stage.body)
    assert all(b.conditioned for stage in net.down_path for b in stage.body)  # the coarsest scale too
    assert all(not b.conditioned for stage in _small("input").down_path for b in stage.body)


def test_parameter_names_are_the_public_implementations():
    net = RNet(in_channels=3, cond_channels=4, out_channels=3, widths=(16, 32), blocks=1, conditioning="both")
    expected = {"head": (16, 7, 3, 3)}
    for level, width in enumerate((16, 32)):
        block = f"down_path.{level}.body.0"
        for sft in ("sft1", "sft2"):  # 1×1 convs: cond -> F/8 -> F/4 -> F (multiplier and shift)
            expected[f"{block}.{sft}.conv1"] = (width // 8, 4, 1, 1)
            expected[f"{block}.{sft}.conv2"] = (width // 4, width // 8, 1, 1)
            expected[f"{block}.{sft}.mul_conv"] = (width, width // 4, 1, 1)
            expected[f"{block}.{sft}.add_conv"] = (width, width // 4, 1, 1)
        expected[f"{block}.conv1"] = expected[f"{block}.conv2"] = (width, width, 3, 3)
    expected["down_path.0.downsampler"] = (32, 16, 3, 3)
    expected["up_path.0.upsampler"] = (32, 16, 2, 2)  # transposed conv: in × out × 2 × 2
    expected["up_path.0.body.0.conv1"] = expected["up_path.0.body.0.conv2"] = (16, 16, 3, 3)
    expected["tail"] = (3, 16, 3, 3)
    weights = {f"{name}.weight": shape for name, shape in expected.items()}
    biases = {f"{name}.bias": (shape[1] if "upsampler" in name else shape[0],) for name, shape in expected.items()}
    assert {n: tuple(p.shape) for n, p in net.named_parameters()} == {**weights, **biases}


def test_down_path_reads_the_cond_map_resized_by_nearest_neighbour():
    net = _small("down", widths=(8, 8), blocks=1)
    seen = []
    net.down_path[1].body[0].sft1.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    cond = _rand(1, 2, 6, 10, seed=7)
    net(_rand(1, 3, 6, 10), cond)
    assert torch.equal(seen[0], cond[..., ::2, ::2])


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


def test_the_input_is_reflect_padded_to_a_multiple_of_two_to_the_depth_minus_one():
    net = _small("input", widths=(8, 8, 8))
    seen = []
    net.head.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    x, cond = _rand(1, 3, 6, 9), _rand(1, 2, 6, 9, seed=8)
    net(x, cond)
    expected = torch.nn.functional.pad(torch.cat([x, cond], 1), (0, 3, 0, 2), mode="reflect")
    assert torch.equal(seen[0], expected)


def test_paper_size_denoiser():
    net = RNet(in_channels=3, cond_channels=1, out_channels=3, widths=(96, 192, 288), blocks=3)
    n_params = sum(p.numel() for p in net.parameters())
    assert 5e6 < n_params < 20e6
    x = _rand(1, 3, 32, 32)
    with torch.no_grad():
        assert net(x, _rand(1, 1, 32, 32)).shape == (1, 3, 32, 32)
