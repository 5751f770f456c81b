"""K runs' fused MLP steps as one (`gankit train --seeds` when `step` resolves to fused).

The fused step of training/mlp_step.py with the members' parameters stacked (K, ...): each
GEMM is one batched call for all K members (a kept oneDNN primitive, native/onednn.py, or
torch's `bmm`/`baddbmm` with `kernels: plain`), each elementwise op one call
over the stack (native/mlp_parts.py), each half step a recorded program as in one run's step,
one fused Adam call per net. What belongs to a run stays the member's own:
its noise generator, its dropout masks (drawn from its own process-wide RNG state), its Adam
state, EMA weights and loss sums (training/ensemble.py's `Ensemble` holds them).

Why: report 000's MLP at batch 64 is a handful of GEMMs too small to fill two cores (alone,
in bf16: 38-165 us each, 59-316 GFLOP/s), and the same GEMMs batched for 8 members ran at
158-376 GFLOP/s. An 8-member step takes 5.9x one run's fused step, where 8 runs one after
another took 8x (benchmarks/train_speed.py, docs/speed.md).

Equality with a solo run: a solo fused run computes its hidden layers with oneDNN's fused
inner product, the ensemble with batched GEMMs, which sum in another order. So a member
equals its seed trained alone with the fused step to rounding, and its random draws (noise,
dropout masks, data order) bit for bit (tests/training/test_mlp_ensemble_step.py states the
tolerances); `step: autograd` keeps the bit-identical batched autograd step
(training/ensemble.py).
"""
from __future__ import annotations

from typing import Any

import torch

from gankit.training.mlp_step import MLPStep, check_sums, sums_due


class FusedEnsembleStep(MLPStep):
    """The fused step of an Ensemble's K members (built by `Ensemble` when its members'
    step resolves to fused)."""

    def __init__(self, ens: Any) -> None:
        """`ens`: the training/ensemble.py `Ensemble` whose stacks and members it steps (not
        imported here: the ensemble module builds this step)."""
        self.ens = ens
        k = len(ens.members)
        self._setup(ens.cfg, ens.G_mod, ens.D_mod, ens.device, ens.loss, ens.G.params,
                    ens.D.params, (k,))
        # each member's slices of the gradient buffers, in the order of the Adam views
        self._member_grads = {net: [g[i] for g in grads for i in range(k)]
                              for net, grads in (("G", self.g_grads), ("D", self.d_grads))}

    def _noise(self, z: torch.Tensor) -> None:
        for zk, m in zip(z, self.ens.members):
            torch.randn(zk.shape, generator=m.noise_gen, out=zk)

    def _draw_mask(self, mask: torch.Tensor, p: float) -> None:
        for k in range(len(self.ens.members)):
            with self.ens._as(k):
                mask[k].bernoulli_(1 - p)

    def _opt(self, net: str) -> torch.optim.Adam:
        return self.ens.opt_g if net == "G" else self.ens.opt_d

    def _states(self, opt: torch.optim.Adam, params: list[torch.Tensor]) -> list[dict]:
        """The stacked Adam states (`Ensemble._adam_from_members`)."""
        return [opt.state[p] for p in params]

    def _adam(self, net: str) -> None:
        self.ens._adam(self._opt(net), self._member_grads[net])

    def _ema(self) -> None:
        self.ens._ema_update()

    def _record(self, net: str, stats: torch.Tensor) -> None:
        self.ens._record(net, stats)

    def _check_finite(self) -> None:
        if sums_due(self.ens.members[0]):  # the lead holds the stop signal
            for m in self.ens.members:
                check_sums(m)
