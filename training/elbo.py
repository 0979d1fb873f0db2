"""The ELBO of Eq. 18 through Pyro, with its terms kept for logging.

Two estimators of the same expectation:

- ``"mc"`` (default): Pyro's ``Trace_ELBO``; every site is a Monte Carlo sample.
- ``"analytic"``: Pyro's ``TraceMeanField_ELBO``; the KL terms of z, σ², ρ and λ² are
  taken in closed form (torch's Normal‖Normal and InverseGamma‖InverseGamma KLs, which
  equal Eqs. 21-23 with the corrections noted in ``training.closed_forms``), the
  likelihood stays a Monte Carlo estimate. Valid because the guide is mean-field given y.

Both record, after each evaluation, the ELBO's terms per observed pixel of the last
particle (detached): ``likelihood`` (E log p(y|z,σ²,Λ)), ``kl_z``, ``kl_sigma2`` and
``kl_kernel`` (ρ and λ² together; 0 for denoising), so a training loop can show them
without a second forward pass.
"""

from __future__ import annotations

import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from pyro.poutine.util import site_is_subsample
from torch.distributions import kl_divergence

ELBO_KINDS = ("mc", "analytic")
TERM_OF_SITE = {"z": "kl_z", "sigma2": "kl_sigma2", "rho": "kl_kernel", "lambda2": "kl_kernel"}
TERMS = ("likelihood", "kl_z", "kl_sigma2", "kl_kernel")


def _latent_sites(model_trace):
    for name, site in model_trace.nodes.items():
        if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site):
            yield name, site


def _terms(model_trace, guide_trace, analytic: bool) -> dict[str, torch.Tensor]:
    terms = {name: torch.zeros(()) for name in TERMS}
    terms["likelihood"] = model_trace.nodes["y"]["log_prob_sum"].detach()
    for name, model_site in _latent_sites(model_trace):
        guide_site = guide_trace.nodes[name]
        if analytic:
            kl = (kl_divergence(guide_site["fn"], model_site["fn"]) * guide_site["scale"]).sum()
        else:
            kl = guide_site["log_prob_sum"] - model_site["log_prob_sum"]
        key = TERM_OF_SITE[name]
        terms[key] = terms[key].to(kl.device) + kl.detach()
    return terms


class _KeepsTerms:
    """Mixin for a Pyro ELBO: keeps the last particle's terms in ``self.terms``."""

    analytic = False

    def _differentiable_loss_particle(self, model_trace, guide_trace):
        self.terms = _terms(model_trace, guide_trace, self.analytic)
        return super()._differentiable_loss_particle(model_trace, guide_trace)


class MonteCarloELBO(_KeepsTerms, Trace_ELBO):
    """Pyro's ``Trace_ELBO``, every term sampled."""


class AnalyticKLELBO(_KeepsTerms, TraceMeanField_ELBO):
    """Pyro's ``TraceMeanField_ELBO``: closed-form KLs, sampled likelihood."""

    analytic = True


def make_elbo(kind: str = "mc", num_particles: int = 1) -> MonteCarloELBO | AnalyticKLELBO:
    """The ELBO estimator by name: "mc" (Trace_ELBO) or "analytic" (TraceMeanField_ELBO)."""
    if kind == "mc":
        return MonteCarloELBO(num_particles=num_particles, max_plate_nesting=1)
    if kind == "analytic":
        return AnalyticKLELBO(num_particles=num_particles, max_plate_nesting=1)
    raise ValueError(f"unknown ELBO {kind!r}; expected one of {ELBO_KINDS}")
