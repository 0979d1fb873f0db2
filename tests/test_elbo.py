"""The ELBO through Pyro: both estimators agree with the closed form and train every network."""

import math

import pyro.poutine as poutine
import pytest
import torch
from torch.distributions import kl_divergence

from generative.closed_forms import analytic_elbo_denoising, kl_kernel, kl_sigma2, kl_z
from generative.config import denoising_config, sr_config
from generative.model import VIRNetModel
from guides.guide import VIRNetGuide
from training.elbo import TERMS, make_elbo
from tests.helpers import TINY_GUIDE, synthetic_batch

CONFIGS = {"denoise": denoising_config(), "sr-x4": sr_config(4)}


def model_and_guide(config):
    return VIRNetModel(config), VIRNetGuide(config, TINY_GUIDE)


def repeated_losses(elbo, model, guide, args, draws):
    with torch.no_grad():
        return torch.tensor([elbo.differentiable_loss(model, guide, *args).item() for _ in range(draws)])


def test_trace_elbo_is_an_unbiased_estimate_of_the_closed_form_elbo():
    config = denoising_config(eps0_sq=1e-4)
    args = synthetic_batch(config, size=16)
    model, guide = model_and_guide(config)
    losses = repeated_losses(make_elbo("mc"), model, guide, args, draws=400)
    with torch.no_grad():
        post = guide.posterior(args[0])
        exact = analytic_elbo_denoising(args[0], args[1], args[2], post.mu, post.beta, config).item()
    standard_error = losses.std().item() / math.sqrt(len(losses))
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
    y, x, xi, lambda_hat = synthetic_batch(config, size=16 * config.scale)
    model, guide = model_and_guide(config)
    guide_trace = poutine.trace(guide).get_trace(y, x, xi, lambda_hat)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(y, x, xi, lambda_hat)
    post = guide_trace.nodes["_RETURN"]["value"]
    kls = {
        name: kl_divergence(guide_trace.nodes[name]["fn"], model_trace.nodes[name]["fn"]).sum()
        for name in ["z", "sigma2"] + (["rho", "lambda2"] if config.has_kernel else [])
    }
    with torch.no_grad():
        assert kls["z"].item() == pytest.approx(kl_z(post.mu, x, config.eps0_sq).sum().item(), rel=1e-4)
        assert kls["sigma2"].item() == pytest.approx(kl_sigma2(post.beta, xi, config.alpha0).sum().item(), rel=1e-4)
        if config.has_kernel:
            exact = kl_kernel(post.m, post.eta, lambda_hat, config.kappa0, config.r0_sq).sum().item()
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
