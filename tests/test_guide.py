"""The guide factorizes as Eq. 12, with the laws of Eqs. 13-15, under the model's site names."""

import warnings

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import pytest
import torch
from pyro.util import check_model_guide_match

from generative.config import denoising_config, sr_config
from generative.model import VIRNetModel
from guides.guide import FACTORIZATIONS, Degradation, GuideConfig, VIRNetGuide, paper_guide_config
from tests.helpers import TINY_GUIDE, synthetic_batch


def sample_sites(tr):
    return [n for n, s in tr.nodes.items() if s["type"] == "sample" and n != "batch"]


@pytest.mark.parametrize("config", [denoising_config(), sr_config(3)], ids=["denoise", "sr-x3"])
def test_guide_samples_every_latent_site_of_the_model_in_the_same_order_and_shape(config):
    y, x, xi, kernel_params_hat = synthetic_batch(config, size=24)
    guide = VIRNetGuide(config, TINY_GUIDE)
    guide_trace = poutine.trace(guide).get_trace(y, x, xi, kernel_params_hat)
    model_trace = poutine.trace(poutine.replay(VIRNetModel(config), trace=guide_trace)).get_trace(y, x, xi, kernel_params_hat)
    latent = [n for n in sample_sites(model_trace) if n != "y"]
    assert sample_sites(guide_trace) == latent
    for name in latent:
        assert guide_trace.nodes[name]["value"].shape == model_trace.nodes[name]["value"].shape
        assert guide_trace.nodes[name]["fn"].has_rsample


def model_and_guide_traces(config, guide):
    y, x, xi, kernel_params_hat = synthetic_batch(config, size=24)
    guide_trace = poutine.trace(guide).get_trace(y, x, xi, kernel_params_hat)
    model_trace = poutine.trace(poutine.replay(VIRNetModel(config), trace=guide_trace)).get_trace(y, x, xi, kernel_params_hat)
    return model_trace, guide_trace


@pytest.mark.parametrize("config", [denoising_config(), sr_config(2), sr_config(3), sr_config(4)],
                         ids=["denoise", "sr-x2", "sr-x3", "sr-x4"])
def test_model_and_guide_pass_pyros_own_match_check(config):
    """pyro.util.check_model_guide_match (validation is on in the tests): every latent site of the
    model is in the guide and vice versa, same plates, same event dims and shapes; no warning."""
    model_trace, guide_trace = model_and_guide_traces(config, VIRNetGuide(config, TINY_GUIDE))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_model_guide_match(model_trace, guide_trace, max_plate_nesting=1)


class _GuideWithoutRho(VIRNetGuide):
    def draw(self, post, y):
        with poutine.block(hide=["rho"]):
            super().draw(post, y)


class _GuideWithAnExtraSite(VIRNetGuide):
    def draw(self, post, y):
        super().draw(post, y)
        pyro.sample("sigma2_twin", dist.InverseGamma(torch.full_like(post.beta, 3.0), post.beta).to_event(4))


def test_the_match_check_catches_a_guide_that_misses_or_adds_a_site():
    config = sr_config(2)
    model_trace, guide_trace = model_and_guide_traces(config, _GuideWithoutRho(config, TINY_GUIDE))
    with pytest.warns(UserWarning, match="in model but not guide: {'rho'}"):
        check_model_guide_match(model_trace, guide_trace, max_plate_nesting=1)
    model_trace, guide_trace = model_and_guide_traces(config, _GuideWithAnExtraSite(config, TINY_GUIDE))
    with pytest.warns(UserWarning, match="in guide but not model"):
        check_model_guide_match(model_trace, guide_trace, max_plate_nesting=1)


def test_posterior_shapes_for_super_resolution():
    config = sr_config(4)
    y = torch.rand(2, 3, 10, 12)
    post = VIRNetGuide(config, TINY_GUIDE).posterior(y)
    assert post.mu.shape == (2, 3, 40, 48)
    assert post.beta.shape == (2, 1, 10, 12)
    assert torch.allclose(post.beta, post.beta[..., :1, :1].expand_as(post.beta)), "SR noise is i.i.d."
    assert post.eta.shape == (2, 2) and (post.eta > 0).all()
    assert post.m.shape == (2,) and (post.m.abs() < 1).all()


def test_q_sigma2_has_mode_beta_and_mean_alpha0_beta_over_alpha0_minus_2():
    config = denoising_config()
    y = torch.rand(1, 3, 16, 16)
    guide = VIRNetGuide(config, TINY_GUIDE)
    tr = poutine.trace(guide).get_trace(y)
    law = tr.nodes["sigma2"]["fn"].base_dist
    post = tr.nodes["_RETURN"]["value"]
    mode = law.rate / (law.concentration + 1)
    assert torch.allclose(mode, post.beta, rtol=1e-5)
    assert torch.allclose(law.mean, post.sigma2_mean(config.alpha0), rtol=1e-5)


@pytest.mark.parametrize("factorization", list(FACTORIZATIONS))
def test_restoration_depends_only_on_what_the_factorization_conditions_on(factorization):
    config = sr_config(2)
    guide = VIRNetGuide(config, GuideConfig(**{**TINY_GUIDE.to_dict(), "factorization": factorization}))
    on_sigma, on_kernel = FACTORIZATIONS[factorization]
    assert guide.rnet.conditioning == ("none" if not (on_sigma or on_kernel) else TINY_GUIDE.conditioning)
    y = torch.rand(1, 3, 12, 12)
    base = guide.posterior(y).mu
    with torch.no_grad():
        guide.snet.conv_last.bias.add_(2.0)
    assert torch.allclose(guide.posterior(y).mu, base) != on_sigma


def test_unknown_factorization_is_rejected():
    with pytest.raises(ValueError, match="factorization"):
        GuideConfig(factorization="q(z)")


def test_paper_size_networks_match_the_published_parameter_counts():
    def millions(guide):
        return round(sum(p.numel() for p in guide.parameters()) / 1e6, 2)

    assert millions(VIRNetGuide(denoising_config(), paper_guide_config("denoise"))) == 10.54  # paper: 10.5M
    real = VIRNetGuide(denoising_config(sigma_channels=3), paper_guide_config("denoise-real"))
    assert millions(real) == 15.40  # paper: 15.40M
    # The paper's Table 5 says 5.72M; the public code at its sisr configs builds 5.90M.
    assert millions(VIRNetGuide(sr_config(4), paper_guide_config("sr"))) == 5.90


def test_posterior_is_the_degradation_stage_then_the_restoration_stage():
    config = sr_config(2)
    guide = VIRNetGuide(config, TINY_GUIDE).eval()
    y = torch.rand(2, 3, 9, 11)
    estimate = guide.degradation(y)
    assert isinstance(estimate, Degradation)
    assert estimate.beta.shape == (2, 1, 9, 11) and estimate.eta.shape == (2, 2) and estimate.m.shape == (2,)
    post = guide.posterior(y)
    assert torch.equal(post.mu, guide.restoration_mean(y, estimate))
    assert torch.equal(post.beta, estimate.beta) and torch.equal(post.eta, estimate.eta)
    assert torch.equal(post.m, estimate.m)
    denoiser = VIRNetGuide(denoising_config(), TINY_GUIDE)
    assert denoiser.degradation(y).eta is None and denoiser.degradation(y).m is None


def test_sr_restoration_reads_the_kernel_then_the_noise_level_as_constant_maps():
    config = sr_config(3)
    guide = VIRNetGuide(config, TINY_GUIDE)
    seen = []
    guide.rnet.register_forward_hook(lambda module, args, out: seen.append(args))
    y = torch.rand(1, 3, 5, 6)
    estimate = Degradation(torch.full((1, 1, 5, 6), 0.04), torch.tensor([[2.0, 3.0]]), torch.tensor([0.5]))
    guide.restoration_mean(y, estimate)
    upsampled, cond = seen[0]
    assert torch.equal(upsampled, torch.nn.functional.interpolate(y, scale_factor=3, mode="nearest"))
    assert cond.shape == (1, 4, 1, 1)  # constant over the image: RNet broadcasts it
    assert torch.allclose(cond, torch.tensor([2.0, 3.0, 0.5, 0.2])[None, :, None, None])


def test_sr_restoration_equals_rnet_on_the_full_constant_maps():
    guide = VIRNetGuide(sr_config(2), GuideConfig(**{**TINY_GUIDE.to_dict(), "conditioning": "both"})).eval()
    y = torch.rand(2, 3, 7, 9)
    estimate = guide.degradation(y)
    full = torch.cat([estimate.eta, estimate.m[:, None], estimate.beta[:, :, 0, 0].sqrt()], dim=1)
    full = full[:, :, None, None].expand(-1, -1, 14, 18)
    upsampled = torch.nn.functional.interpolate(y, scale_factor=2, mode="nearest")
    assert torch.allclose(guide.restoration_mean(y, estimate), guide.rnet(upsampled, full), atol=1e-6)


@pytest.mark.parametrize(
    "config, widths, multiple",
    [(denoising_config(), (8, 16, 32), 4), (sr_config(2), (8, 16, 32), 2), (sr_config(4), (8, 16, 32), 1),
     (sr_config(3), (8, 16, 32, 64), 8), (denoising_config(), (8,), 1)],
)
def test_padding_multiple_makes_rnet_pad_nothing(config, widths, multiple):
    guide = VIRNetGuide(config, GuideConfig(**{**TINY_GUIDE.to_dict(), "rnet_widths": widths}))
    assert guide.padding_multiple == multiple
    assert (multiple * config.scale) % guide.rnet.multiple == 0
