import pytest
import torch

from guides.knet import KNet


def _image(h=37, w=45, b=2):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(2))


def _small():
    return KNet(features=16, blocks=2, reduction=4)


@pytest.mark.parametrize("size", [(37, 45), (5, 7), (64, 48)])
def test_output_shapes(size):
    lambda2, rho = _small()(_image(*size))
    assert lambda2.shape == (2, 2)
    assert rho.shape == (2,)


def test_initial_posterior_is_a_plausible_kernel():
    lambda2, rho = _small()(_image())
    assert (lambda2 > 1).all() and (lambda2 < 4).all()
    assert rho.abs().max() < 0.1


@pytest.mark.parametrize("bias, expected", [(50.0, 1e2), (-50.0, 1e-4)])
def test_lambda2_is_clamped(bias, expected):
    net = _small()
    with torch.no_grad():
        net.tail[0].bias.fill_(bias)
    lambda2, rho = net(_image())
    assert torch.allclose(lambda2, torch.full((2, 2), expected))
    assert (rho.abs() <= 1).all()
    assert torch.allclose(rho.abs(), torch.ones(2))


def test_outputs_follow_the_pooled_tail_channels():
    net = _small()
    with torch.no_grad():
        net.tail[0].weight.zero_()
        net.tail[0].bias.copy_(torch.tensor([0.0, 1.0, 0.5]))
    lambda2, rho = net(_image())
    assert torch.allclose(lambda2, torch.tensor([1.0, torch.e]).expand(2, 2))
    assert torch.allclose(rho, torch.tanh(torch.tensor(0.5)).expand(2))


def test_gradients_reach_every_parameter():
    net = _small()
    lambda2, rho = net(_image())
    (lambda2.sum() + rho.sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_default_architecture():
    net = KNet()
    assert net.head.kernel_size == (9, 9) and net.head.stride == (4, 4)
    assert net.head.out_channels == 64 and net.head.bias is None
    assert len(net.body) == 8
    assert net.tail[0].out_channels == 3
    activations = [m for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(activations) == 16 and all(m.negative_slope == 0.2 for m in activations)
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules())


def test_parameter_names_are_the_public_implementations():
    names = {n: tuple(p.shape) for n, p in KNet(blocks=1).named_parameters()}
    assert names == {
        "head.weight": (64, 3, 9, 9),
        "body.0.body.0.weight": (64, 64, 3, 3), "body.0.body.0.bias": (64,),
        "body.0.body.2.weight": (64, 64, 3, 3), "body.0.body.2.bias": (64,),
        "body.0.body.3.body.0.weight": (4, 64, 1, 1), "body.0.body.3.body.0.bias": (4,),
        "body.0.body.3.body.2.weight": (64, 4, 1, 1), "body.0.body.3.body.2.bias": (64,),
        "tail.0.weight": (3, 64, 3, 3), "tail.0.bias": (3,),
    }
