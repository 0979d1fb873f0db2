"""Extra KNet updates between SVI steps (``OptimConfig.knet_steps``).

KNet's share of the ELBO is the kernel term KL(q(Λ|y) ‖ p(Λ)) of Eq. 23 (closed form,
``training.closed_forms.kl_kernel``) plus the kernel's effect on the likelihood; the KL is
more than 99 % of KNet's gradient (README, "Choices"). KNet is cheap next to RNet (its head
has stride 4), so after each SVI step it takes ``knet_steps`` more Adam steps on that KL
alone, each on a fresh batch of training examples, scaled per observed pixel like the ELBO.
The other networks are untouched by these steps.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist

from guides.guide import VIRNetGuide
from training import data as datasets
from training.closed_forms import kl_kernel


class KernelSteps:
    """Callable that runs the extra KNet steps; ``loss`` holds the last one's KL per pixel."""

    def __init__(
        self,
        guide: VIRNetGuide,
        optimizer: torch.optim.Optimizer,
        dataset,
        batch_size: int,
        workers: int,
        seed: int,
        steps: int,
        max_norm: float,
        device: torch.device,
        distributed: bool = False,
    ):
        self.guide, self.optimizer, self.steps = guide, optimizer, steps
        self.max_norm, self.device, self.distributed = max_norm, device, distributed
        self.loss = None
        self._batches = self._forever(datasets.make_loader(dataset, batch_size, workers, seed, distributed))

    @staticmethod
    def _forever(loader) -> Iterator[dict]:
        epoch = 0
        while True:
            if loader.sampler is not None and hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    def __call__(self) -> None:
        cfg = self.guide.model_config
        for _ in range(self.steps):
            batch = next(self._batches)
            y = batch["y"]
            y_kernel = batch.get("y_kernel", y).to(self.device)
            eta, m = self.guide.kernel_posterior(y_kernel)
            kl = kl_kernel(m, eta, batch["kernel_params_hat"].to(self.device), cfg.kappa0, cfg.r0_sq)
            loss = kl.sum() / y.numel()  # per observed pixel of the restored patch, as in the ELBO
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            parameters = list(self.guide.knet.parameters())
            if self.distributed:
                for p in parameters:
                    dist.all_reduce(p.grad)
                    p.grad /= dist.get_world_size()
            torch.nn.utils.clip_grad_norm_(parameters, self.max_norm)
            self.optimizer.step()
            self.loss = loss.detach()
