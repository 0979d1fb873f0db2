"""The ELBO through Pyro: both estimators agree with the closed form and train every network."""

import math

import pyro.poutine as poutine
import pytest
import torch
from torch.distributions import kl_divergence

from generative.config import denoising_config, sr_config
from generative.kernels import gaussian_kernel
from generative.model import VIRNetModel
from generative.operators import degrade
from guides.guide import PosteriorParams, VIRNetGuide
from tests.helpers import TINY_GUIDE, synthetic_batch
from training.closed_forms import analytic_elbo_denoising, inverse_gamma_log_mean, kl_kernel, kl_sigma2, kl_z
from training.elbo import TERMS, make_elbo

CONFIGS = {"denoise": denoising_config(), "sr-x4": sr_config(4)}


def model_and_guide(config):
    return VIRNetModel(config), VIRNetGuide(config, TINY_GUIDE)


def repeated_losses(elbo, model, guide, args, draws):
    with torch.no_grad():
        return torch.tensor([elbo.differentiable_loss(model, guide, *args).item() for _ in range(draws)])


def fixed_posterior_guide(config, args, seed=1):
    """The real guide with its networks replaced by a fixed posterior near the truth (so
    that the Monte Carlo spread is small enough for a bias to show): µ = x + 0.01 n,
    β = ξ·e^(0.3 n), η = 1.3 λ̂², m = 0.8 ρ̂ + 0.05."""
    y, x, xi, kernel_params_hat = args
    gen = torch.Generator().manual_seed(seed)
    post = PosteriorParams(
        mu=x + 0.01 * torch.randn(x.shape, generator=gen),
        beta=xi * torch.exp(0.3 * torch.randn(xi.shape, generator=gen)),
        eta=None if kernel_params_hat is None else 1.3 * kernel_params_hat[:, :2],
        m=None if kernel_params_hat is None else 0.8 * kernel_params_hat[:, 2] + 0.05,
    )
    guide = VIRNetGuide(config, TINY_GUIDE)
    guide.posterior = lambda y, y_kernel=None: post
    return guide, post


def reference_elbo(config, args, post, draws=2000, chunk=250):
    """(ELBO per observed pixel, its standard error) without Pyro: the exact KLs of
    Eqs. 21-23 plus E_q log p(y | z, σ², Λ), closed form in σ² and Monte Carlo over z and Λ
    drawn from the guide's laws (Eqs. 14-15) with torch.distributions."""
    y, x, xi, kernel_params_hat = args
    kl = kl_z(post.mu, x, config.eps0_sq) + kl_sigma2(post.beta, xi, config.alpha0)
    if config.has_kernel:
        kl = kl + kl_kernel(post.m, post.eta, kernel_params_hat, config.kappa0, config.r0_sq)
    shape, rate = config.alpha0 - 1, config.alpha0 * post.beta
    values = []
    for _ in range(draws // chunk):
        z = post.mu + config.eps0_sq**0.5 * torch.randn(chunk, *post.mu.shape)
        kernel = None
        if config.has_kernel:
            rho = torch.distributions.Normal(post.m, config.r0_sq**0.5).sample((chunk,))
            widths = torch.distributions.Gamma(config.kappa0 - 1, config.kappa0 * post.eta).sample((chunk,)).reciprocal()
            kernel = gaussian_kernel(widths.flatten(0, 1), rho.flatten(), config.kernel_size)
        hz = degrade(z.flatten(0, 1), kernel, config.scale, config.downsampler).view(chunk, *y.shape)
        log_density = (
            -0.5 * math.log(2 * math.pi)
            - 0.5 * inverse_gamma_log_mean(shape, rate)
            - 0.5 * (shape / rate) * (y - hz) ** 2
        )
        values.append(log_density.flatten(1).sum(dim=1))
    likelihood = torch.cat(values)
    elbo = (likelihood - kl.sum()) / y.numel()
    return elbo.mean().item(), elbo.std().item() / math.sqrt(len(elbo))


UNBIASED_CONFIGS = {"denoise": denoising_config(), "sr-x2": sr_config(2), "sr-x4": sr_config(4)}


@pytest.mark.parametrize("kind", ["mc", "analytic"])
@pytest.mark.parametrize("name", list(UNBIASED_CONFIGS))
def test_the_pyro_elbo_is_an_unbiased_estimate_of_the_elbo_at_the_default_eps0(name, kind):
    """Trace_ELBO (and the closed-form-KL variant) against the ELBO computed without Pyro, at
    the task's default ε0² (1e-6 denoising, 1e-5 SR)."""
    config = UNBIASED_CONFIGS[name]
    args = synthetic_batch(config, size=8 * config.scale)
    guide, post = fixed_posterior_guide(config, args)
    losses = repeated_losses(make_elbo(kind), VIRNetModel(config), guide, args, draws=200 if kind == "mc" else 50)
    with torch.no_grad():
        if config.has_kernel:
            exact, exact_se = reference_elbo(config, args, post)
        else:
            exact, exact_se = analytic_elbo_denoising(args[0], args[1], args[2], post.mu, post.beta, config).item(), 0.0
    standard_error = math.sqrt(losses.var().item() / len(losses) + exact_se**2)
    assert abs(-losses.mean().item() - exact) < 4 * standard_error


@pytest.mark.parametrize("name", list(CONFIGS))
def test_monte_carlo_and_analytic_kl_estimators_have_the_same_expectation(name):
    config = CONFIGS[name]
    args = synthetic_batch(config, size=16 * config.scale)
    model, guide = model_and_guide(config)
    mc = repeated_losses(make_elbo("mc"), model, guide, args, draws=200)
    analytic = repeated_losses(make_elbo("analytic"), model, guide, args, draws=200)
    se = math.sqrt(mc.var().item() / len(mc) + analytic.var().item() / len(analytic))
    assert abs(mc.mean().item() - analytic.mean().item()) < 4 * se
    assert analytic.var() < mc.var(), "closed-form KLs remove Monte Carlo noise"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_kl_of_the_analytic_variant_is_really_in_closed_form(name):
    """TraceMeanField_ELBO silently falls back to sampling when a KL is missing; it must not here."""
    config = CONFIGS[name]
    y, x, xi, kernel_params_hat = synthetic_batch(config, size=16 * config.scale)
    model, guide = model_and_guide(config)
    guide_trace = poutine.trace(guide).get_trace(y, x, xi, kernel_params_hat)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(y, x, xi, kernel_params_hat)
    post = guide_trace.nodes["_RETURN"]["value"]
    kls = {
        name: kl_divergence(guide_trace.nodes[name]["fn"], model_trace.nodes[name]["fn"]).sum()
        for name in ["z", "sigma2"] + (["rho", "lambda2"] if config.has_kernel else [])
    }
    with torch.no_grad():
        assert kls["z"].item() == pytest.approx(kl_z(post.mu, x, config.eps0_sq).sum().item(), rel=1e-4)
        assert kls["sigma2"].item() == pytest.approx(kl_sigma2(post.beta, xi, config.alpha0).sum().item(), rel=1e-4)
        if config.has_kernel:
            exact = kl_kernel(post.m, post.eta, kernel_params_hat, config.kappa0, config.r0_sq).sum().item()
            assert (kls["rho"] + kls["lambda2"]).item() == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize("kind", ["mc", "analytic"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_svi_step_reaches_every_network_parameter_and_reports_the_terms(kind, name):
    config = CONFIGS[name]
    args = synthetic_batch(config, size=16 * config.scale)
    model, guide = model_and_guide(config)
    elbo = make_elbo(kind)
    loss_module = elbo(model, guide)
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=1e-4)
    before = {n: p.detach().clone() for n, p in guide.named_parameters()}
    loss = loss_module(*args)
    loss.backward()
    assert all(p.grad is not None for p in guide.parameters()), "every parameter is in the graph"
    networks = ["snet", "rnet"] + (["knet"] if config.has_kernel else [])
    for net in networks:
        assert sum(p.grad.abs().sum() for p in getattr(guide, net).parameters()) > 0, net
    optimizer.step()
    changed = {n.split(".")[0] for n, p in guide.named_parameters() if not torch.equal(before[n], p)}
    assert changed == set(networks)
    assert set(elbo.terms) == set(TERMS)
    total = -elbo.terms["likelihood"] + elbo.terms["kl_z"] + elbo.terms["kl_sigma2"] + elbo.terms["kl_kernel"]
    assert total.item() == pytest.approx(loss.item(), rel=1e-4)
    assert (elbo.terms["kl_kernel"].item() > 0) == config.has_kernel


@pytest.mark.parametrize("kind", ["mc", "analytic"])
def test_small_eps0_turns_the_elbo_gradient_into_the_mse_gradient(kind):
    """Sec. 4.2.2: the 1/(2ε0²) weight of Eq. 21 dominates, so ∂(−ELBO)/∂µ ∝ ∂MSE/∂µ = 2(µ − x)/N."""
    config = denoising_config(eps0_sq=1e-12)
    y, x, xi, _ = synthetic_batch(config, size=16)
    model, guide = model_and_guide(config)
    captured = {}

    def keep_mu(module, inputs, output):
        output.retain_grad()
        captured["mu"] = output

    guide.rnet.register_forward_hook(keep_mu)
    make_elbo(kind)(model, guide)(y, x, xi).backward()
    mu = captured["mu"]
    mse_gradient = 2 * (mu - x).detach() / mu.numel()
    cosine = torch.nn.functional.cosine_similarity(mu.grad.flatten(), mse_gradient.flatten(), dim=0)
    assert cosine > 0.9999
    assert (mu.grad / mse_gradient).median().item() > 0, "same direction, positive factor"


def test_unknown_elbo_is_rejected():
    with pytest.raises(ValueError, match="unknown ELBO"):
        make_elbo("iwae")
