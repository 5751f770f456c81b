"""K runs of one architecture trained in one process as one batched model (`gankit train
--seeds`, sweeps with `seeds:`; on a CPU `--seeds` runs one such ensemble per core, in
processes side by side: sweeps/seeds.py).

Each member is an ordinary `Trainer` with its own seed, run folder, data order (its
`BatchLoader`), noise generator, checkpoints, metrics and grids; only its training step is
shared. The members' parameters are stacked on a new first dimension as leaf tensors, one
fused Adam call steps them all (Adam is elementwise, so one Adam over the stack is K Adams;
the kernel gets each member's slices, see `_adam`), and
each step computes the members' losses side by side and back-propagates their sum (the
members share no parameter, so no gradient mixes). Everything outside the step (learning
rates, held-out diagnostics, evaluation, grids, checkpoints) is the member Trainer's own code,
run on parameters and Adam state copied back from the stack once per epoch (and before a
save), so every member's folder is an ordinary run: `load_run`, `gankit sample/eval` and
`gankit train --resume MEMBER` work on it alone.

How the step is batched, and why: report 000's MLP cGAN at batch 64 is a handful of small
GEMMs per step, so its time is mostly per-op overhead (issue 11: 4.8 s an epoch against a
0.6 s arithmetic limit). Batched GEMMs (`torch.baddbmm` over the stacked weights) make each
layer one op for all K members, and on the AMD EPYC this was built on (MKL) `baddbmm` gives
every member exactly the bits of `F.linear` in a run of its own, forward and backward, fp32
and bf16 autocast (measured: 0 difference for every layer shape of report 000's nets). That
is the kernels' choice, not a law: on an Intel Xeon with AMX, D's 794-wide first layer comes
out 4e-5 apart when batched. So each layer shape is checked once on the machine that trains
(`_batched_is_exact`) and a layer whose batched GEMMs are not exact runs its members one
after another: members stay bit-identical to solo runs everywhere, batched where it is free. `torch.func.vmap` over
the modules' own forwards was the other candidate; it cannot run them here at all: the
models check labels with a host sync (`int(y.min())`), which vmap refuses on per-member
labels (tried: "vmap: It looks like you're calling .item() on a Tensor"), and its batched
`linear` for a 1-wide layer (D's logit) sums in another order than the GEMV a solo run uses. So the MLP family gets hand-batched layers (`_linear`) and its own
forward here (~40 lines that follow `models/mlp.py`); the models stay plain `nn.Module`s.

Two batched steps, chosen by the step each member resolves (`step`, recorded in its config):
- `autograd`: the batched autograd step here. A member equals the same seed trained alone in
  the same precision with `step=autograd`, bit for bit on CPU (tests/training/test_ensemble.py
  compares parameters, Adam state and RNG states).
- `fused` (what `auto` picks where the fused step covers the config): the fused MLP step with
  the members stacked (training/mlp_ensemble_step.py). A member equals its seed's solo fused
  run within the rounding of batched against solo GEMMs, its random draws bit for bit
  (tests/training/test_mlp_ensemble_step.py). Before it, fused runs trained one after
  another, since one run's fused step beat a member's share of the batched autograd step.
Dropout draws each member's masks from that member's own process-wide RNG state (swapped in
per member), as its solo run draws them. Families the batched steps do not cover train one
after another in the same process (one log line says why, `why_not_batched`): convolutional
families (BatchNorm statistics, conv layers), spectral norm, the gradient penalty
(per-member input gradients: WGAN-GP, R1), DiffAugment, adaptive D steps (members would take different steps),
compiled models.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gankit.config import TrainConfig, dump, keys, to_dict
from gankit.data.loader import stackable, stacked_epoch
from gankit.losses.gan import differentiates_twice
from gankit.training import fast, run_lock
from gankit.training.checkpoint import CheckpointError, load_checkpoint
from gankit.training.ema import ema_decay
from gankit.training.logging import Logger, Progress
from gankit.training.mlp_ensemble_step import FusedEnsembleStep
from gankit.training.loop import (Interrupted, Trainer, batch_steps, check_new_folder,
                                  epochs_left, epochs_text, make_adam, resume, train)
from gankit.training.runs import RunPaths, read_config, resume_state
from gankit.training.stats import logit_stats

MEMBER_PREFIX = "seed"


def member_dir(out: str | Path, seed: int) -> Path:
    """OUT/seed003: the run folder of seed 3 of an ensemble trained into OUT."""
    return Path(out) / f"{MEMBER_PREFIX}{seed:03d}"


def members_of(folder: str | Path) -> list[Path]:
    """The member run folders (seedNNN/ with a config.yaml) of an ensemble folder, sorted."""
    return sorted(p for p in Path(folder).glob(f"{MEMBER_PREFIX}[0-9][0-9][0-9]*")
                  if RunPaths(p).is_run())


def why_not_batched(cfg: TrainConfig) -> str | None:
    """Why runs of `cfg` cannot share a batched step (None when they can)."""
    m = cfg.model
    if m.arch != "mlp":
        return f"model.arch={m.arch}: only the MLP family has a batched ensemble step"
    if m.spectral_norm:
        return "spectral norm updates its power-iteration vectors inside the forward pass"
    if differentiates_twice(cfg.loss.name, cfg.loss.r1_gamma):
        return "a gradient penalty needs each member's gradient with respect to its input"
    if cfg.augment != "none":
        return f"augment={cfg.augment}: the batched step does not augment what D sees"
    if cfg.adaptive_d_steps:
        return "adaptive_d_steps: the members would take different numbers of D steps"
    if m.aux_classifier:
        return "model.aux_classifier: the batched step has no classifier-head losses"
    device = fast.pick_device(cfg.device)
    if fast.resolve_compile(cfg.compile, device):
        return "compile=on: a solo run steps compiled modules"
    return None


def _position(paths: RunPaths) -> tuple[int, int]:
    """(epoch, batch) of the checkpoint a folder resumes from ((0, 0) without one)."""
    for ckpt in paths.resume_candidates("last"):
        try:
            state = load_checkpoint(ckpt, mmap=True)
        except CheckpointError:
            continue
        return int(state["epoch"]), int(state["batch"])
    return 0, 0


def _group_problem(jobs: list[tuple[TrainConfig, Path]]) -> str | None:
    """Why these (config, folder) pairs cannot train as one batched ensemble, or None."""
    if len(jobs) < 2:
        return "one run"
    first = to_dict(jobs[0][0])
    for cfg, path in jobs[1:]:
        diffs = keys.diff(first, to_dict(cfg), ignore=("seed",))
        if diffs:
            return f"{path.name} differs from {jobs[0][1].name} in {diffs[0][0]}, not only the seed"
    reason = why_not_batched(jobs[0][0])
    if reason:
        return reason
    positions = {_position(RunPaths(p)) for _, p in jobs}
    if len(positions) > 1:
        return "the runs stopped at different points (" + ", ".join(
            f"epoch {e} batch {b}" for e, b in sorted(positions)) + ")"
    return None


def train_seeds(cfg: TrainConfig, seeds: list[int], out: str | Path,
                progress: Progress = True) -> list[Path]:
    """Train `cfg` once per seed into OUT/seedNNN (new folders), as one ensemble."""
    jobs = [(dataclasses.replace(cfg, seed=s), member_dir(out, s)) for s in seeds]
    for _, path in jobs:
        check_new_folder(path)
    return train_group(jobs, progress)


def resume_seeds(folder: str | Path, cfgs: list[TrainConfig] | None = None,
                 progress: Progress = True) -> list[Path]:
    """Continue an ensemble folder's members from their last checkpoints (`cfgs`: their
    configs with resumable changes, in the order of `members_of`)."""
    dirs = members_of(folder)
    if not dirs:
        raise CheckpointError(f"{folder} holds no ensemble members ({MEMBER_PREFIX}NNN/ run "
                              "folders); give a folder written by `gankit train --seeds`")
    cfgs = cfgs or [read_config(d) for d in dirs]
    return train_group(list(zip(cfgs, dirs)), progress)


def unfinished(jobs: list[tuple[TrainConfig, Path]]) -> list[tuple[TrainConfig, Path]]:
    """The (config, folder) pairs with epochs left to train (loop.epochs_left: a target below
    what a folder has trained is a ConfigError)."""
    return [(c, p) for c, p in jobs if epochs_left(p, *_position(RunPaths(p)), c.epochs)]


def train_group(jobs: list[tuple[TrainConfig, Path]], progress: Progress = True) -> list[Path]:
    """Train each (config, folder): a folder with a checkpoint resumes from it, a finished one
    is left as it is. Batched as one ensemble when the configs differ only by seed, the
    family allows it and all stand at the same point; else one after another, saying why."""
    todo = unfinished(jobs)
    if jobs and not todo:
        what = (f"{jobs[0][1]} has trained all its" if len(jobs) == 1 else
                f"all {len(jobs)} runs in {jobs[0][1].parent} have trained all their")
        print(f"gankit: {what} {epochs_text(jobs[0][0].epochs)}: nothing to do (--set "
              "epochs=N with a larger N trains on)", file=sys.stderr)
    problem = _group_problem(todo)
    if problem is None:
        with contextlib.ExitStack() as locks:   # every member's folder (training/run_lock.py)
            for _, path in todo:
                locks.enter_context(run_lock.held(RunPaths(path)))
            Ensemble.build(todo, progress).run()
    else:
        if len(todo) > 1:
            print(f"gankit: training {len(todo)} runs one after another in this process, not "
                  f"as a batched ensemble: {problem}", file=sys.stderr)
        for cfg, path in todo:
            if RunPaths(path).has_checkpoint():
                resume(path, progress=progress, cfg=cfg)
            else:
                train(cfg, path, progress=progress)
    return [p for _, p in jobs]


class _Stack:
    """The parameters of K copies of one network stacked on a new first dim, as leaf tensors
    in the order of `named_parameters` (the order of a solo run's gradient norm)."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.modules = modules
        self.names = [n for n, _ in modules[0].named_parameters()]
        with torch.no_grad():
            self.params = {n: torch.stack([dict(m.named_parameters())[n] for m in modules])
                           .requires_grad_(True) for n in self.names}

    def list(self) -> list[torch.Tensor]:
        return [self.params[n] for n in self.names]

    def detached(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.params.items()}


def _batched(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """F.linear for K members as one batched GEMM: h (K, B, in), w (K, out, in), b (K, out)."""
    if b is None:
        return torch.bmm(h, w.transpose(1, 2))
    if w.shape[1] == 1:
        # A 1-wide layer is a GEMV in a solo run, which sums in another order than a batched
        # GEMM; the transposed product (1 x in) @ (in x B) sums as the GEMV does.
        return torch.baddbmm(b[:, :, None], w, h.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(b[:, None, :], h, w.transpose(1, 2))


def _one_by_one(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """F.linear for K members, one member after another: a solo run's own GEMMs."""
    return torch.stack([F.linear(h[k], w[k], None if b is None else b[k])
                        for k in range(h.shape[0])])


_EXACT: dict[tuple, bool] = {}


def _batched_is_exact(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> bool:
    """Whether this machine's batched GEMMs give each member the bits of its solo GEMMs for
    this layer shape, forward and both backward products (checked once per shape, precision
    and device on random data from a private generator: the run's RNG is untouched).

    They do for every layer of report 000's nets with MKL on the AMD EPYC this was built on;
    on an Intel Xeon with AMX, MKL blocks a 794-wide inner dimension differently when batched
    (4e-5 apart), so such a layer runs its members one after another instead."""
    autocast = torch.is_autocast_enabled(h.device.type)
    key = (tuple(h.shape), tuple(w.shape), b is not None, h.dtype, h.device.type, autocast,
           torch.get_autocast_dtype(h.device.type) if autocast else None)
    if key not in _EXACT:
        gen = torch.Generator(device=h.device).manual_seed(0)

        def draw(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else torch.randn(t.shape, generator=gen, device=h.device,
                                                      dtype=t.dtype)
        data = [draw(h), draw(w), draw(b)]
        grads = []
        with torch.enable_grad():
            for fn in (_batched, _one_by_one):
                leaves = [None if t is None else t.clone().requires_grad_() for t in data]
                out = fn(*leaves)
                out.backward(torch.ones_like(out) + out.detach() * 0.5)
                grads.append([out.detach()] + [t.grad for t in leaves if t is not None])
        _EXACT[key] = all(torch.equal(a, c) for a, c in zip(*grads))
    return _EXACT[key]


def _linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """F.linear for K members at once: h (K, B, in), w (K, out, in), b (K, out), batched
    where that is exact on this machine (`_batched_is_exact`), else member by member."""
    return (_batched if _batched_is_exact(h, w, b) else _one_by_one)(h, w, b)


def _sequential(net: nn.Sequential, prefix: str, p: dict[str, torch.Tensor],
                h: torch.Tensor, dropout: Callable[[torch.Tensor, float], torch.Tensor]
                ) -> torch.Tensor:
    """`net` (Linear layers, dropout and parameter-free activations) on (K, B, F) with stacked
    weights; `dropout(h, p)` applies each member's own masks."""
    for i, layer in enumerate(net):
        if isinstance(layer, nn.Linear):
            h = _linear(h, p[f"{prefix}.{i}.weight"], p.get(f"{prefix}.{i}.bias"))
        elif isinstance(layer, nn.Dropout):
            h = dropout(h, layer.p) if layer.training else h
        else:
            h = layer(h)
    return h


def _embed(p: dict[str, torch.Tensor], name: str, y: torch.Tensor) -> torch.Tensor:
    """Each member's rows of its own embedding table p[name] (K, C, E) for labels y (K, B):
    one lookup in the K tables laid end to end (each member's gradient rows accumulate in
    the order of its own batch, as in a solo run)."""
    table = p[name]
    k, c, e = table.shape
    offsets = torch.arange(k, device=y.device)[:, None] * c
    return F.embedding(y + offsets, table.reshape(k * c, e))


def _label_vector(encoder: nn.Module, name: str, p: dict[str, torch.Tensor],
                  y: torch.Tensor) -> torch.Tensor:
    """`LabelEncoder` (one-hot or learnt embedding) for K members' labels (K, B)."""
    if encoder.embed is not None:
        return _embed(p, name, y)
    return F.one_hot(y, encoder.num_classes).to(torch.get_default_dtype())


class Ensemble:
    """K MLP Trainers (same config but the seed, same position) advanced by one batched step.

    Build it with `Ensemble.build(jobs)`; `run()` trains every member to its config's epochs.
    """

    def __init__(self, members: list[Trainer], rng: list[torch.Tensor],
                 progress: Progress = True) -> None:
        self.members = members
        self.rng = rng              # each member's process-wide RNG state (see `_as`)
        self.progress = progress
        lead = members[0]
        self.cfg, self.device, self.loss = lead.cfg, lead.device, lead.loss
        self.G_mod, self.D_mod = lead.G, lead.D      # structure only; weights live in the stacks
        self.G = _Stack([m.G for m in members])
        self.D = _Stack([m.D for m in members])
        o = self.cfg.optim
        self.opt_g = make_adam(self.G.list(), o.g_lr, o.g_betas)
        self.opt_d = make_adam(self.D.list(), o.d_lr, o.d_betas)
        # before the Adam views: in bf16 the fused step moves the stacks into one flat buffer
        self.fused = FusedEnsembleStep(self) if lead.fused is not None else None
        self._share_data()
        self._adam_from_members()
        self.ema = None
        if lead.ema is not None:
            with torch.no_grad():
                self.ema = [torch.stack([dict(m.ema.shadow.named_parameters())[n]
                                         for m in members]) for n in self.G.names]
        self.d_losses = torch.func.vmap(self.loss.d_loss)
        self.g_losses = torch.func.vmap(self.loss.g_loss)
        self.stats = torch.func.vmap(logit_stats)

    @classmethod
    def build(cls, jobs: list[tuple[TrainConfig, Path]], progress: Progress = True) -> "Ensemble":
        """Member Trainers for (config, folder) pairs, each resumed from its folder's last
        checkpoint when it has one, exactly as a solo run starts or resumes."""
        members, rng = [], []
        for cfg, path in jobs:
            state = None
            if RunPaths(path).has_checkpoint():
                state, _ = resume_state(RunPaths(path), "last", to_dict(cfg),
                                        fast.pick_device(cfg.device))
            # The first member Trainer resolves `step` as a solo run does (saying why once, if a
            # fused step falls back); the others take its result. The configs record it: fused
            # members take the batched fused step, the others the batched autograd step.
            if members:
                cfg = dataclasses.replace(cfg, step=members[0].cfg.step)
            m = Trainer(cfg, path, progress=False)
            if state is not None:
                m.load_state_dict(state)
            members.append(m)
            rng.append(torch.get_rng_state())
        lead = members[0]
        verb = f"resuming at epoch {lead.epoch + 1}, batch {lead.batch + 1}" if lead.step else \
            "starting"
        parents = {m.paths.root.parent for m in members}
        where = (f"{parents.pop()}/{{{','.join(m.paths.root.name for m in members)}}}"
                 if len(parents) == 1 else ", ".join(str(m.paths.root) for m in members))
        print(f"gankit: {lead.cfg.preset}: an ensemble of {len(members)} runs (seeds "
              f"{', '.join(str(m.cfg.seed) for m in members)}) in one batched model, {verb}; "
              f"{lead.model_summary} each; device {lead.device}; run folders {where}",
              file=sys.stderr)
        return cls(members, rng, progress)

    def _share_data(self) -> None:
        """Members that loaded the same training images (the same split: each Trainer loads
        its own copy) read the lead's copy: K-1 copies less in memory, and their batches can
        be gathered at once (`_batches`)."""
        a = self.members[0].loader
        for m in self.members[1:]:
            b = m.loader
            same_labels = (a.labels is None and b.labels is None) or (
                a.labels is not None and b.labels is not None and torch.equal(a.labels, b.labels))
            if (b.images.shape == a.images.shape and b.images.dtype == a.images.dtype
                    and same_labels and torch.equal(b.images, a.images)):
                b.share(a)
                m.train_ds = self.members[0].train_ds

    # ---- members <-> stacks ------------------------------------------------------------
    @contextlib.contextmanager
    def _as(self, k: int) -> Iterator[Trainer]:
        """Member k with its own process-wide RNG state current (what its checkpoints save
        and anything it draws at the end of an epoch), as in a run of its own."""
        torch.set_rng_state(self.rng[k])
        try:
            yield self.members[k]
        finally:
            self.rng[k] = torch.get_rng_state()

    @torch.no_grad()
    def _adam_from_members(self) -> None:
        """The stacked Adam states from the members' (zeros at step 0 where a member has
        taken no step yet: what fused Adam creates at its first step), and their views."""
        k = len(self.members)
        self._views: dict[int, tuple[list[torch.Tensor], ...]] = {}
        for opt, stack, which in ((self.opt_g, self.G, "opt_g"), (self.opt_d, self.D, "opt_d")):
            states = [getattr(m, which).state for m in self.members]
            views: tuple[list[torch.Tensor], ...] = ([], [], [], [], [])
            for n, sp in stack.params.items():
                per = [st.get(dict(mod.named_parameters())[n]) for st, mod
                       in zip(states, stack.modules)]
                if per[0]:
                    st = {"step": per[0]["step"].clone(),
                          "exp_avg": torch.stack([s["exp_avg"] for s in per]),
                          "exp_avg_sq": torch.stack([s["exp_avg_sq"] for s in per])}
                else:
                    st = {"step": torch.zeros((), dtype=torch.float32, device=sp.device),
                          "exp_avg": torch.zeros_like(sp), "exp_avg_sq": torch.zeros_like(sp)}
                opt.state[sp] = st
                for i in range(k):
                    for out, t in zip(views, (sp, st["exp_avg"], st["exp_avg_sq"], st["step"])):
                        out.append(t if t.ndim == 0 else t[i])
                views[4].append(st["step"])
            self._views[id(opt)] = views

    @torch.no_grad()
    def to_members(self) -> None:
        """Copy the stacked weights, Adam states and EMA weights into the member Trainers."""
        for opt, stack, which in ((self.opt_g, self.G, "opt_g"), (self.opt_d, self.D, "opt_d")):
            for k, (m, mod) in enumerate(zip(self.members, stack.modules)):
                params = dict(mod.named_parameters())
                mopt = getattr(m, which)
                for n, sp in stack.params.items():
                    params[n].copy_(sp[k])
                    st = opt.state[sp]
                    if st["step"].item() > 0:  # a solo run has no state before its first step
                        mopt.state[params[n]] = {"step": st["step"].clone(),
                                                 "exp_avg": st["exp_avg"][k].clone(),
                                                 "exp_avg_sq": st["exp_avg_sq"][k].clone()}
        if self.ema is not None:
            for k, m in enumerate(self.members):
                shadow = dict(m.ema.shadow.named_parameters())
                for n, e in zip(self.G.names, self.ema):
                    shadow[n].copy_(e[k])

    # ---- the batched model -------------------------------------------------------------
    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Every member's G: z (K, B, nz), y (K, B) -> flattened images (K, B, C*H*W)."""
        G, p = self.G_mod, self.G.params
        h = z
        if G.conditional:
            h = torch.cat([z, _label_vector(G.label, "label.embed.weight", p, y).to(z.dtype)],
                          dim=2)
        return _sequential(G.net, "net", p, h, self._dropout)

    def judge(self, x: torch.Tensor, y: torch.Tensor | None,
              p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Every member's D with weights p: x (K, B, C*H*W), y (K, B) -> logits (K, B)."""
        D = self.D_mod
        h = x
        if D.cond is not None and D.cond.dim:
            v = _label_vector(D.cond.encoder, "cond.encoder.embed.weight", p, y)
            h = torch.cat([h, v.to(h.dtype)], dim=2)
        h = _sequential(D.body, "body", p, h, self._dropout)
        out = _linear(h, p["head.weight"], p.get("head.bias"))[..., 0]
        if D.cond is not None and D.cond.projection is not None:
            out = out + (_embed(p, "cond.projection.embed.weight", y) * h).sum(dim=2)
        return out

    def _dropout(self, h: torch.Tensor, p: float) -> torch.Tensor:
        """Dropout on (K, B, F), each member's mask drawn from its own process-wide RNG state
        as `F.dropout` draws it on CPU (`bernoulli_(1 - p)` on a tensor like the input,
        divided by 1 - p), so that a member's masks are those of its solo run."""
        if p == 0:
            return h
        if p == 1:
            return h * torch.zeros((), dtype=h.dtype)
        masks = []
        for k in range(len(self.members)):
            with self._as(k):
                masks.append(torch.empty_like(h[k]).bernoulli_(1 - p))
        return h * torch.stack(masks).div_(1 - p)

    def _norms(self, stack: _Stack) -> torch.Tensor:
        """Each member's gradient norm (K,), clipped first to cfg.grad_clip as
        `clip_grad_norm_` does in a solo run."""
        k = len(self.members)
        grads = [p.grad for p in stack.list() if p.grad is not None]

        def norms() -> torch.Tensor:
            each = torch._foreach_norm([g[i] for i in range(k) for g in grads])
            return torch.linalg.vector_norm(torch.stack(each).view(k, len(grads)), dim=1)

        if self.cfg.grad_clip:
            coef = torch.clamp(self.cfg.grad_clip / (norms() + 1e-6), max=1.0)
            for g in grads:
                g.mul_(coef.view(-1, *[1] * (g.ndim - 1)))
        return norms()

    def _update(self, stack: _Stack, opt: torch.optim.Adam, losses: torch.Tensor,
                which: str) -> torch.Tensor:
        """Back-propagate the members' losses (K,), clip, step Adam; the gradient norms (K,)."""
        for p in stack.list():
            p.grad = None
        losses.sum().backward()
        norms = self._norms(stack)
        self._adam(opt)
        self._check_finite(losses, which)
        return norms

    @torch.no_grad()
    def _adam(self, opt: torch.optim.Adam, grads: list[torch.Tensor] | None = None) -> None:
        """`adam.adam_step` on the stacked tensors, given to the fused kernel as each member's
        own slices: the kernel's vector loop and scalar tail then cover each member's
        elements exactly as in a solo run (over the whole stack, elements shifted between
        the two gave exp_avg_sq 1-ulp apart). The views of the weights and moments are made
        once (`_adam_views`); only the gradients are new each step (the stacks' `.grad`, or
        `grads`: each member's slices in the same order, from the fused step's buffers)."""
        group = opt.param_groups[0]
        params, avgs, sqs, member_steps, steps = self._views[id(opt)]
        k = len(self.members)
        if grads is None:
            grads = [p.grad[i] for p in group["params"] for i in range(k)]
        torch._foreach_add_(steps, 1)  # each stacked tensor's count once, before the update
        beta1, beta2 = group["betas"]
        torch._fused_adam_(params, grads, avgs, sqs, [], member_steps, lr=group["lr"],
                           beta1=beta1, beta2=beta2, weight_decay=0.0, eps=group["eps"],
                           amsgrad=False, maximize=False)

    def _check_finite(self, losses: torch.Tensor, which: str) -> None:
        """A member's NonFiniteLoss (naming its folder) when its loss is NaN or inf."""
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            k = int((~finite).nonzero()[0])
            self.members[k]._check_finite(losses[k], which)

    def _batches(self, e: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Every member's batches of epoch e (each its own data order) as stacks (K, B, ...)
        and (K, B): one gather for all members where their loaders share the images
        (`stackable`, after `_share_data`), else each its own, stacked."""
        loaders = [m.loader for m in self.members]
        start = self.members[0].batch
        if stackable(loaders):
            yield from stacked_epoch(loaders, e, start)
            return
        for batches in zip(*(ld.epoch(e, start) for ld in loaders)):
            yield _stack(list(batches))

    def step(self, batches: list[tuple[torch.Tensor, torch.Tensor | None]], do_g: bool) -> None:
        """One training step of every member (Trainer.train_step, K at a time), from each
        member's own batch."""
        self.step_stacked(*_stack(batches), do_g)

    def step_stacked(self, x: torch.Tensor, y: torch.Tensor | None, do_g: bool) -> None:
        """`step` from the members' batches stacked: images (K, B, ...), labels (K, B), in the
        run's precision (the step owns its autocast, as `Trainer.train_step` does)."""
        batch_steps(self.fused.step if self.fused is not None else self._autograd_step,
                    x, y, do_g, self.cfg.d_steps_per_batch, self.cfg.precision, self.device)

    def _autograd_step(self, x: torch.Tensor, y: torch.Tensor | None, do_g: bool) -> None:
        members = self.members
        x = x.flatten(2)
        n = x.shape[1]
        z = torch.stack([torch.randn(n, self.G_mod.nz, generator=m.noise_gen,
                                     device=self.device) for m in members])
        with torch.set_grad_enabled(do_g):
            fake = self.generate(z, y)
        logits = self.judge(torch.cat([x, fake.detach()], dim=1),
                            None if y is None else torch.cat([y, y], dim=1), self.D.params)
        real_logits, fake_logits = logits.float().split(n, dim=1)
        d_loss = self.d_losses(real_logits, fake_logits)
        gn_d = self._update(self.D, self.opt_d, d_loss, "D")
        stats = torch.cat([self.stats(d_loss, real_logits, fake_logits), gn_d[:, None]], dim=1)
        self._record("D", stats)
        if not do_g:
            return
        g_loss = self.g_losses(self.judge(fake, y, self.D.detached()).float())
        gn_g = self._update(self.G, self.opt_g, g_loss, "G")
        self._ema_update()
        self._record("G", torch.stack([g_loss.detach(), gn_g], dim=1))

    @torch.no_grad()
    def _ema_update(self) -> None:
        """Each member's EMA of G, as EMA.update(step + 1) in a solo run."""
        if self.ema is not None:
            decay = ema_decay(self.cfg.ema, self.cfg.ema_rampup, self.members[0].step + 1)
            torch._foreach_lerp_(self.ema, self.G.list(), 1.0 - decay)

    def _record(self, net: str, stats: torch.Tensor) -> None:
        """Add each member's step statistics (K, n) to its D or G sums."""
        sums = [m.d_sum if net == "D" else m.g_sum for m in self.members]
        torch._foreach_add_(sums, list(stats.unbind(0)))
        for m in self.members:
            if net == "D":
                m.d_count += 1
            else:
                m.g_count += 1

    # ---- epochs ------------------------------------------------------------------------
    def run(self) -> list[Path]:
        """Train every member to cfg.epochs; returns their run folders."""
        loggers = []
        for k, m in enumerate(self.members):
            m.paths.root.mkdir(parents=True, exist_ok=True)
            m.paths.config.write_text(dump(m.cfg))
            m.paths.truncate_metrics(m.epoch, m.step)
            # the ensemble draws one bar; in a log file the lead's lines stand for all
            loggers.append(Logger(m.paths, m.epoch,
                                  progress="lines" if self.progress == "lines" and k == 0
                                  else False))
        lead = self.members[0]
        try:
            with lead._signals():
                while lead.epoch < self.cfg.epochs:
                    self._run_epoch(loggers)
        finally:
            for lg in loggers:
                lg.close()
        for k in range(len(self.members)):
            with self._as(k) as m:
                m.finish()
        return [m.paths.root for m in self.members]

    def _save_all(self, name: str = "last") -> list[Path]:
        self.to_members()
        paths = []
        for k in range(len(self.members)):
            with self._as(k) as m:
                paths.append(m.save(name))
        return paths

    def _run_epoch(self, loggers: list[Logger]) -> None:
        members, lead, cfg = self.members, self.members[0], self.cfg
        e = lead.epoch
        rates = [m.set_rates() for m in members]
        for opt, lr in ((self.opt_g, rates[0][0]), (self.opt_d, rates[0][1])):
            for group in opt.param_groups:
                group["lr"] = lr
        n = len(lead.loader)
        bar = (_bar(e + 1, cfg.epochs, n, lead.batch, len(members)) if self.progress is True
               else None)
        hooked = any(m.hooks for m in members)
        t0 = time.perf_counter()
        for x, y in self._batches(e):
            b = lead.batch
            self.step_stacked(x, y, do_g=(b + 1) % lead.d_steps == 0 or b + 1 == n)
            if hooked:
                self.to_members()
            for m, lg in zip(members, loggers):
                m.after_step(lg, e, b)
            if bar is not None and (b % 25 == 0 or b + 1 == n):
                bar.n = lead.batch
                bar.refresh()
            if lead._stop_signal is not None:
                if bar is not None:
                    bar.close()
                self._save_all("last")
                where = lead.paths.root.parent
                again = (f"gankit train --resume {where}" if members_of(where) else
                         "the same command again")
                raise Interrupted(f"stopped by signal {lead._stop_signal} at epoch {e + 1}, "
                                  f"batch {lead.batch}; a checkpoint saved in each of the "
                                  f"{len(members)} run folders. Continue with: {again}")
        if bar is not None:
            bar.close()
        # Each member's time_s is its share of the ensemble's epoch: they sum to the wall time.
        share = (time.perf_counter() - t0) / len(members)
        self.to_members()
        for k, (rate, lg) in enumerate(zip(rates, loggers)):
            with self._as(k) as m:
                m.end_epoch(lg, rate[0], rate[1], share)
        if self.progress is True:
            last = [m.paths.last_record() for m in members]
            print(f"epoch {e + 1}: {len(members)} runs, {share * len(members):.1f} s; d_loss "
                  + " ".join(f"{r.get('train/d_loss', float('nan')):.3f}" for r in last)
                  + "; g_loss " + " ".join(f"{r.get('train/g_loss', float('nan')):.3f}"
                                            for r in last), file=sys.stderr)


def _stack(batches: list[tuple[torch.Tensor, torch.Tensor | None]]
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Members' batches [(x, y), ...] as stacks (K, B, ...) and (K, B) (or None)."""
    x = torch.stack([xb for xb, _ in batches])
    return x, None if batches[0][1] is None else torch.stack([yb for _, yb in batches])


def _bar(epoch: int, epochs: int, total: int, start: int, k: int) -> Any:
    return tqdm(total=total, initial=start, desc=f"epoch {epoch}/{epochs} ({k} runs)",
                leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)


__all__ = ["Ensemble", "member_dir", "members_of", "resume_seeds", "train_group",
           "train_seeds", "why_not_batched"]
