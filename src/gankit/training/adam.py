"""One Adam update through torch's fused kernel, without torch.optim's per-call bookkeeping.

`torch.optim.Adam(fused=True).step()` spends ~0.4 ms of Python per call here (a tenth of
report 000's MLP step); `adam_step` makes the same kernel call on the same optimiser state,
created as torch creates it, so the numbers, checkpoints and `load_state_dict` are torch's.
Both training steps use it (loop.py's autograd step, mlp_step.py's fused one).
"""
from __future__ import annotations

import torch


def plain_fused(opt: torch.optim.Adam) -> bool:
    """Whether `opt` is one fused Adam group without weight decay, amsgrad or maximize: the
    update `adam_step` computes by one call of torch's kernel."""
    group = opt.param_groups[0]
    return (len(opt.param_groups) == 1 and bool(group.get("fused")) and not group["weight_decay"]
            and not group["amsgrad"] and not group["maximize"])


def states(opt: torch.optim.Adam, params: list[torch.Tensor]) -> list[dict]:
    """Each parameter's Adam state, created as torch.optim.Adam creates it at a first step."""
    out = []
    for p in params:
        st = opt.state[p]
        if not st:
            st["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        out.append(st)
    return out


def adam_step(opt: torch.optim.Adam, params: list[torch.Tensor] | None = None,
              grads: list[torch.Tensor] | None = None) -> None:
    """`opt.step()` for a fused torch Adam without weight decay or amsgrad, as one call of its
    own kernel: the state is created and advanced exactly as torch.optim.Adam does it. The
    gradients are the parameters' `.grad`, or `grads` (one per tensor of `params`, which must
    be the group's parameters: the fused MLP step keeps its gradients in buffers of its own)."""
    if not plain_fused(opt):
        if grads is not None:  # opt.step() reads p.grad, which these gradients are not
            raise ValueError("adam_step with gradients of its own needs one fused Adam group "
                             "without weight decay, amsgrad or maximize")
        opt.step()
        return
    group = opt.param_groups[0]
    if params is None:
        params = [p for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
    if not params:
        return
    sts = states(opt, params)
    beta1, beta2 = group["betas"]
    with torch.no_grad():
        steps = [st["step"] for st in sts]
        _advance(opt, params, steps)  # the first thing torch's step does
        torch._fused_adam_([p.detach() for p in params], grads,
                           [st["exp_avg"] for st in sts], [st["exp_avg_sq"] for st in sts],
                           [], steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                           weight_decay=0.0, eps=group["eps"], amsgrad=False, maximize=False)


def _advance(opt: torch.optim.Adam, params: list[torch.Tensor],
             steps: list[torch.Tensor]) -> None:
    """Add 1 to each parameter's step count. Parameters stepped together share one step
    tensor (a per-tensor `_foreach_add_` took 33 us of a 2.5 ms fused MLP step): counts made
    separate (new state, or a loaded checkpoint) are joined once, when their values agree."""
    first = steps[0]
    if any(t is not first for t in steps):
        if not bool(torch.stack(steps).eq(first).all()):  # once, after a load
            torch._foreach_add_(steps, 1)
            return
        for i, p in enumerate(params):  # new dicts: the fused MLP step keeps rows per dict
            opt.state[p] = {**opt.state[p], "step": first}
            steps[i] = first
    first.add_(1)
