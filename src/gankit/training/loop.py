"""The one training loop every preset runs.

Each batch gives one discriminator step; the generator steps after every `d_steps`-th
D step (report 002's "discriminator advantage" counted in batches, so one epoch is still one
pass over the data). `d_steps_per_batch` > 1 gives D that many updates on each batch
instead, then G's (the advantage's other reading). The generator step reuses the fake batch
of the last D step and is scored by the just-updated D, as in PyTorch's DCGAN example. Fake
images are drawn with the real batch's labels, so G sees the data's class distribution
without extra randomness.
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from gankit.config import ConfigError, TrainConfig, dump, to_dict
from gankit.data.datasets import load_dataset, qualified_name
from gankit.data.image import to_uint8
from gankit.data.loader import BatchLoader
from gankit.errors import GankitError, NonFiniteLoss
from gankit.losses import get_loss
from gankit.metrics.evaluate import evaluate_generator
from gankit.models import build_models, describe
from gankit.models.base import batch_coupled, evaluating, judging
from gankit.plots.grid import composite, save_grid
from gankit.sampling import grid_inputs
from gankit.training import cores, distributed, fast, run_lock
from gankit.training.adam import adam_step
from gankit.training.augment import diff_augment, parse_policy
from gankit.training.checkpoint import FORMAT_VERSION, CheckpointError, save_checkpoint
from gankit.training.ema import EMA
from gankit.training.logging import Logger, Progress
from gankit.training.runs import RunPaths, read_config, resume_state
from gankit.training.schedules import rates
from gankit.training.stats import D_STATS, G_STATS, LOGIT_STATS, logit_stats, named


class Interrupted(GankitError):
    """Training was stopped by SIGINT/SIGTERM after saving a checkpoint."""
    exit_code = 130
    kind = "stopped"


def grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """L2 norm of all gradients together (report 000, Table 6.1)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device if params else None)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _split(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """D's output as (logits, class logits or None): D returns both only when asked."""
    return out if isinstance(out, tuple) else (out, None)


def make_adam(params: Any, lr: float, betas: list[float]) -> torch.optim.Adam:
    # fused Adam is one kernel per step for all tensors: the biggest single saving on the
    # MLP models, whose steps are dominated by per-op overhead.
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=True)


def batch_steps(step: Callable[[torch.Tensor, torch.Tensor | None, bool], None],
                x: torch.Tensor, y: torch.Tensor | None, do_g: bool, d_per_batch: int,
                precision: str, device: torch.device) -> None:
    """`d_per_batch` D updates on the batch (x, y), G's update with the last when `do_g`
    (`d_steps_per_batch`, one reading of report 002's "discriminator advantage"), each in an
    autocast region of its own: autocast keeps its bf16 copies of the weights until its
    region ends, so a second D update in the same region would run D's weights from before
    the first (the G update is safe there: it runs D with requires_grad off, uncached)."""
    for i in range(d_per_batch):
        with fast.autocast(precision, device):
            step(x, y, do_g and i == d_per_batch - 1)


class Trainer:
    """Holds the whole training state of one run and advances it epoch by epoch.

    `hooks` (for tests and tools) are called as hook(trainer, epoch, batch) after each step.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path,
                 progress: Progress = True) -> None:
        self.cfg = cfg
        self.paths = RunPaths(Path(run_dir))
        self.world = distributed.current()  # one process unless torchrun started several
        self.device = distributed.device_for(fast.pick_device(cfg.device), self.world)
        fast.flush_denormals(self.device)
        cores.set_threads(cfg.threads, self.world.local_size if self.world.distributed else None,
                          warn=self.device.type == "cpu")
        self.progress = progress if self.world.main else False  # training/logging.Logger's
        self.hooks: list[Callable[["Trainer", int, int], None]] = []
        d = cfg.data
        self.data_name = qualified_name(d.name, d.classes)
        self.train_ds = load_dataset(self.data_name, d.split, d.data_dir, d.limit)
        self.val_ds = load_dataset(self.data_name, "val", d.data_dir).subset(cfg.val_diagnostics)
        torch.manual_seed(cfg.seed)  # model initialisation is part of the seed
        self.G, self.D = build_models(cfg.model, self.train_ds.shape,
                                      self.train_ds.num_classes if self.train_ds.labelled else 0)
        self.model_summary = describe(self.G, self.D)
        self.G.to(self.device)
        self.D.to(self.device)
        self.loss = get_loss(cfg.loss)
        o = cfg.optim
        self.opt_g = make_adam(self.G.parameters(), o.g_lr, o.g_betas)
        self.opt_d = make_adam(self.D.parameters(), o.d_lr, o.d_betas)
        self.ema = EMA(self.G, cfg.ema, cfg.ema_rampup) if cfg.ema > 0 else None
        self.augment_policy = parse_policy(cfg.augment)
        self.loader = BatchLoader(self.train_ds, cfg.batch_size, cfg.seed, d.scale, d.rotation,
                                  device=self.device, part=(self.world.rank, self.world.size))
        self.noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.gp_gen: torch.Generator | None = self.noise_gen  # the gradient penalty's mixing
        self.resume_note: str | None = None  # what a resume on another world size changes
        self.g_params = list(self.G.parameters())
        self.d_params = list(self.D.parameters())
        # One D forward over [real; fake] halves the per-op overhead, but mixes real and fake
        # in BatchNorm's statistics or a minibatch-stddev group; then the two go separately.
        self.joint_d = not batch_coupled(self.D)
        fast.setup(self)  # resolves cfg.precision and cfg.compile
        # The networks a training step runs: G and D themselves, or their DDP wrappers.
        self.G_step, self.D_step = distributed.setup(self)
        self.epoch = 0          # epochs completed
        self.batch = 0          # next batch within the current epoch (mid-epoch resume)
        self.step = 0           # D steps taken in all
        self.d_steps = cfg.d_steps
        self.best = math.inf
        self._reset_sums()
        self._stop_signal: int | None = None

    # ---- state -------------------------------------------------------------------------
    def _reset_sums(self) -> None:
        self.d_sum = torch.zeros(len(D_STATS), device=self.device)
        self.g_sum = torch.zeros(len(G_STATS), device=self.device)
        self.d_count = 0
        self.g_count = 0
        self._mark_window()

    def _mark_window(self) -> None:
        """Start a `log_every` window at the current sums (a copy on the device, no sync)."""
        self.window = (self.d_sum.clone(), self.g_sum.clone(), self.d_count, self.g_count)

    def window_means(self) -> dict[str, Any]:
        """The training statistics since the last window mark (one host sync), then a new mark."""
        d0, g0, dc, gc = self.window
        record: dict[str, Any] = {"step": self.step, "epoch": self.epoch + 1, "batch": self.batch}
        d = distributed.mean((self.d_sum - d0) / max(1, self.d_count - dc))
        record.update(named(D_STATS, d, "train"))
        if self.g_count > gc:  # no G step in a window shorter than d_steps
            g = distributed.mean((self.g_sum - g0) / (self.g_count - gc))
            record.update(named(G_STATS, g, "train"))
        self._mark_window()
        return record

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples: the EMA copy when EMA is on."""
        return self.ema.shadow if self.ema else self.G

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "config": to_dict(self.cfg),
            "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "d_steps": self.d_steps, "best": self.best,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "G_ema": self.ema.shadow.state_dict() if self.ema else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            # The learning rates are a pure function of the epoch (schedules.py): recorded
            # here for the reader, recomputed on resume.
            "schedule": {"lr_g": self.opt_g.param_groups[0]["lr"],
                         "lr_d": self.opt_d.param_groups[0]["lr"]},
            "rng": {"torch": torch.get_rng_state(), "noise": self.noise_gen.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "sums": {"d": self.d_sum.cpu(), "g": self.g_sum.cpu(), "d_count": self.d_count,
                     "g_count": self.g_count},
            "model_summary": self.model_summary,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema and state["G_ema"] is not None:
            self.ema.shadow.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        fast.match_layouts(self.opt_g)
        fast.match_layouts(self.opt_d)
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.d_steps, self.best = state["d_steps"], state["best"]
        torch.set_rng_state(state["rng"]["torch"])
        self.noise_gen.set_state(state["rng"]["noise"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        s = state["sums"]
        self.d_sum, self.g_sum = s["d"].to(self.device), s["g"].to(self.device)
        self.d_count, self.g_count = s["d_count"], s["g_count"]
        self.resume_note = distributed.load_ranks(self, state)
        self._mark_window()

    def save(self, name: str = "last") -> Path:
        """Write checkpoints/NAME.pt; saving "last" keeps the one before as last.prev.pt.
        In a distributed run every rank calls it (its RNG state is gathered); rank 0 writes."""
        state = {**self.state_dict(), "data": {"shape": list(self.train_ds.shape),
                                               "classes": list(self.train_ds.classes),
                                               "num_classes": self.train_ds.num_classes
                                               if self.train_ds.labelled else 0}}
        if not distributed.add_ranks(self, state):
            return self.paths.checkpoint(name)
        return save_checkpoint(state, self.paths.checkpoint(name), keep_previous=name == "last")

    # ---- one step ----------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None, do_g: bool) -> None:
        """D's update on the batch (x, y) (`d_steps_per_batch` of them, one by default), and
        G's when `do_g`, in the run's precision: the step owns its autocast, so every caller
        (the loop, `gankit reproduce --list`'s estimates, the benchmarks) times and trains the
        same step (the estimates once ran bf16 configs in fp32: report 002's ResNet step 0.57
        s instead of 0.20)."""
        # step=fused (training/mlp_step.py): the same step, written out; hooks on G or D
        # (tests, tools) need the modules called, so they take the autograd step
        fused = self.fused is not None and not (self.G._forward_hooks or self.D._forward_hooks)
        batch_steps(self.fused.step if fused else self._autograd_step, x, y, do_g,
                    self.cfg.d_steps_per_batch, self.cfg.precision, self.device)

    def _autograd_step(self, x: torch.Tensor, y: torch.Tensor | None, do_g: bool) -> None:
        G, D, loss = self.G_step, self.D_step, self.loss
        # scale: a rank's share of an uneven last batch weighs its images, not its rank
        z, scale = distributed.noise(self, x.shape[0])
        with torch.set_grad_enabled(do_g):
            fake = G(z, y)
        r1 = loss.r1_due(self.step)
        if r1:
            x = x.detach().requires_grad_(True)
        x_d, fake_d = self.augment(x), self.augment(fake.detach())  # what D sees
        aux = self.D.classifier is not None  # AC-GAN head (model.aux_classifier)
        cls = {"classes": True} if aux else {}  # D's call as before when there is no head
        # R1 differentiates the real logits twice: on a step that takes it, D sees the real
        # images alone (no BN here, so the same function), so the double backward runs on
        # half the rows
        if self.joint_d and not r1:
            logits, classes = _split(D(torch.cat([x_d, fake_d]),
                                       None if y is None else torch.cat([y, y]), **cls))
            real_logits, fake_logits = logits.float().split(x.shape[0])  # fp32 losses
            real_classes = classes[:x.shape[0]] if aux else None
        else:
            real_logits, real_classes = _split(D(x_d, y, **cls))
            real_logits, fake_logits = real_logits.float(), D(fake_d, y).float()
        d_loss = loss.d_loss(real_logits, fake_logits)
        if aux:  # D's classifier learns from real images only
            d_loss = d_loss + loss.aux(real_classes, y)
        if loss.gradient_penalty:
            d_loss = d_loss + loss.penalty(self.D, x, fake.detach(), y,
                                           generator=self.gp_gen)
        if r1:
            d_loss = d_loss + loss.r1(real_logits, x)
        self.opt_d.zero_grad(set_to_none=True)
        (d_loss if scale == 1 else d_loss * scale).backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.d_params, self.cfg.grad_clip)
        gn_d = grad_norm(self.d_params)
        adam_step(self.opt_d)
        self._check_finite(d_loss, "D")
        self.d_sum += torch.cat([logit_stats(d_loss, real_logits, fake_logits), gn_d[None]])
        self.d_count += 1
        if not do_g:
            return
        D = self.D  # not D's DDP wrapper: D's gradients are not wanted (nor all-reduced) here
        D.requires_grad_(False)  # no weight gradients for D in the G step: saves a third of D's backward
        g_aux = aux and loss.g_aux_w != 0  # loss.g_aux_weight=0: no class logits needed
        fake_logits, fake_classes = _split(D(self.augment(fake), y, **(cls if g_aux else {})))
        g_loss = loss.g_loss(fake_logits.float())
        if g_aux:
            g_loss = g_loss + loss.aux(fake_classes, y, generator=True)
        self.opt_g.zero_grad(set_to_none=True)
        (g_loss if scale == 1 else g_loss * scale).backward()
        D.requires_grad_(True)
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.g_params, self.cfg.grad_clip)
        gn_g = grad_norm(self.g_params)
        adam_step(self.opt_g)
        self._check_finite(g_loss, "G")
        if self.ema:
            self.ema.update(self.step + 1)
        self.g_sum += torch.stack([g_loss.detach(), gn_g])
        self.g_count += 1

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """x as D sees it in training: DiffAugment's `augment` policy (x itself when none)."""
        return diff_augment(x, self.augment_policy, self.noise_gen) if self.augment_policy else x

    def _check_finite(self, value: torch.Tensor, which: str) -> None:
        if not torch.isfinite(value):
            raise self.nonfinite(which, value.item(), f"at epoch {self.epoch + 1}, batch "
                                 f"{self.batch + 1} (step {self.step + 1})")

    def nonfinite(self, which: str, value: float, where: str) -> NonFiniteLoss:
        """The error for a NaN or inf loss: where it happened, what is kept, what to try.

        A loss that breaks in the first epoch has no checkpoint behind it; the message says
        so instead of pointing at a file that does not exist."""
        last = self.paths.checkpoint("last")
        kept = (f"The last good checkpoint is kept at {last}" if last.is_file() else
                "No checkpoint had been saved yet")
        return NonFiniteLoss(f"{which} loss became {value} {where}; training stopped. {kept}. "
                             "Try lower learning rates (--set optim.g_lr=... --set "
                             "optim.d_lr=...), grad_clip, or another loss.")

    # ---- epochs ------------------------------------------------------------------------
    def epoch_means(self, local: bool = False) -> dict[str, float]:
        """The epoch's training statistics so far: the means over all ranks, or with `local`
        this process's own (no collective: for rank 0's progress bar)."""
        reduce = (lambda t: t) if local else distributed.mean
        return {**named(D_STATS, reduce(self.d_sum / max(1, self.d_count)), "train"),
                **named(G_STATS, reduce(self.g_sum / max(1, self.g_count)), "train")}

    def held_out(self, batch_size: int = 512) -> dict[str, float]:
        """The same diagnostics on the validation split (fixed noise, no updates): G in eval
        mode, D as it judges in training (`judging`: BN on batch statistics), in the
        training precision (in fp32 it took 2.0 of `default`'s ~40 s epoch, in bf16 1.3)."""
        with judging(self.D), fast.autocast(self.cfg.precision, self.device):
            return self._held_out(batch_size)

    def _held_out(self, batch_size: int) -> dict[str, float]:
        G, D = self.G, self.D  # the training G (not EMA): these diagnose the game itself
        val = BatchLoader(self.val_ds, batch_size, self.cfg.seed, self.cfg.data.scale,
                          device=self.device)
        g = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 2)
        names = LOGIT_STATS + ("grad_norm_d", "g_loss", "grad_norm_g")
        totals = torch.zeros(len(names), dtype=torch.float64, device=self.device)
        with evaluating(G):
            for b in range(len(val)):
                idx = torch.arange(b * batch_size, min(len(self.val_ds), (b + 1) * batch_size),
                                   device=self.device)
                x = val.to_float(val.images.index_select(0, idx))
                y = None if val.labels is None else val.labels.index_select(0, idx)
                z = torch.randn(len(idx), G.nz, generator=g, device=self.device)
                fake = G(z, y).detach()
                rl, fl = D(x, y).float(), D(fake, y).float()  # fp32 losses
                d_loss = self.loss.d_loss(rl, fl)
                D.zero_grad(set_to_none=True)
                d_loss.backward()
                gn_d = grad_norm(self.d_params)
                D.zero_grad(set_to_none=True)
                g_loss = self.loss.g_loss(D(G(z, y), y).float())
                G.zero_grad(set_to_none=True)
                g_loss.backward()
                gn_g = grad_norm(self.g_params)
                G.zero_grad(set_to_none=True)
                D.zero_grad(set_to_none=True)
                totals += torch.cat([logit_stats(d_loss, rl, fl),
                                     torch.stack([gn_d, g_loss.detach(), gn_g])]).double()
        return named(names, totals / max(1, len(val)), "val")

    def write_grid(self, epoch: int) -> Path:
        G = self.sampler
        z, y, nrow = grid_inputs(G, self.cfg.seed + 3)
        with evaluating(G), torch.no_grad():
            imgs = G(z.to(self.device), None if y is None else y.to(self.device))
        return save_grid(to_uint8(imgs, self.cfg.data.scale), self.paths.grid(epoch), nrow=nrow)

    def evaluate(self) -> dict[str, float]:
        """FID & co. of the sampler, drawing nothing from the training's RNG streams: a process
        builds its feature space at its first evaluation, which drew from the global RNG (D's
        dropout's), so a resumed run diverged from the uninterrupted one after its first
        evaluation (report 003's MLP at full scale, 2026-12-06)."""
        e = self.cfg.eval
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            res = evaluate_generator(self.sampler, self.data_name, split=e.split, n=e.n,
                                     features=e.features, seed=self.cfg.seed,
                                     data_dir=self.cfg.data.data_dir, scale=self.cfg.data.scale)
        return {f"{e.split}/{k}": v for k, v in res.items()}

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM finish the current step, save a checkpoint, then stop."""
        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal is not None:  # second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._stop_signal = signum
        try:
            old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def run(self) -> Path:
        """Train until cfg.epochs, writing metrics, grids and checkpoints; returns the run dir."""
        cfg, paths = self.cfg, self.paths
        logger: Any = distributed.Silent()  # rank 0 alone writes the run's files
        if self.world.main:
            paths.root.mkdir(parents=True, exist_ok=True)
            paths.config.write_text(dump(cfg))
            paths.truncate_metrics(self.epoch, self.step)
            logger = Logger(paths, self.epoch, progress=self.progress)
        try:
            with self._signals():
                while self.epoch < cfg.epochs:
                    self._run_epoch(logger)
        finally:
            logger.close()
        self.finish()
        return paths.root

    def _run_epoch(self, logger: Any) -> None:
        cfg = self.cfg
        e = self.epoch
        lr_g, lr_d = self.set_rates()
        t0 = time.perf_counter()
        n = len(self.loader)
        bar = logger.bar(e + 1, cfg.epochs, n, self.batch)
        for x, y in self.loader.epoch(e, self.batch):
            b = self.batch
            self.train_step(x, y, do_g=(b + 1) % self.d_steps == 0 or b + 1 == n)
            self.after_step(logger, e, b)
            if bar is not None and (b % 25 == 0 or b + 1 == n):
                logger.update_bar(bar, self.batch, self.epoch_means(local=True))
            if distributed.any_rank(self._stop_signal is not None):
                if bar is not None:
                    bar.close()
                path = self.save("last")
                raise Interrupted(f"stopped by signal {self._stop_signal or 'on another rank'} "
                                  f"at epoch {e + 1}, "
                                  f"batch {self.batch}; checkpoint saved to {path}. "
                                  f"Continue with: gankit train --resume {self.paths.root}")
        if bar is not None:
            bar.close()
        self.end_epoch(logger, lr_g, lr_d, time.perf_counter() - t0)

    # The three parts of an epoch besides its steps, apart so that training/ensemble.py can
    # run K trainers' steps as one batched step and keep everything else as it is here.
    def set_rates(self) -> tuple[float, float]:
        """Set both optimisers' learning rates for the current epoch; (lr_g, lr_d)."""
        lr_g, lr_d = rates(self.cfg.optim, self.epoch, self.cfg.epochs)
        for group in self.opt_g.param_groups:
            group["lr"] = lr_g
        for group in self.opt_d.param_groups:
            group["lr"] = lr_d
        return lr_g, lr_d

    def after_step(self, logger: Any, e: int, b: int) -> None:
        """Count step b of epoch e, log its window when due, call the hooks."""
        self.batch += 1
        self.step += 1
        logger.heartbeat(e + 1, self.cfg.epochs, self.batch, len(self.loader))
        if self.cfg.log_every and self.step % self.cfg.log_every == 0:
            logger.log_steps(self.window_means())
        for hook in self.hooks:
            hook(self, e, b)

    def end_epoch(self, logger: Any, lr_g: float, lr_d: float, seconds: float) -> None:
        """After the last batch of epoch `self.epoch`: its record (held-out diagnostics,
        evaluation), grid, checkpoints."""
        cfg = self.cfg
        e = self.epoch
        record: dict[str, Any] = {"epoch": e + 1, "step": self.step,
                                  "time_s": seconds, "lr_g": lr_g, "lr_d": lr_d,
                                  "d_steps": self.d_steps}
        record.update(self.epoch_means())
        record.update(self.held_out())
        last = e + 1 == cfg.epochs
        evaluated = cfg.eval.every > 0 and ((e + 1) % cfg.eval.every == 0 or last)
        if evaluated:
            record.update(distributed.from_main(self.evaluate))
        if cfg.adaptive_d_steps:  # report 002: one more D step while D accuracy < threshold
            acc = 0.5 * (record["train/acc_real"] + record["train/acc_fake"])
            self.d_steps = min(cfg.max_d_steps, self.d_steps + 1) if acc < cfg.adaptive_threshold else 1
        if self.world.main and (e == 0 or (e + 1) % cfg.sample_every == 0 or last):
            self.write_grid(e + 1)
        self.epoch, self.batch = e + 1, 0
        self._reset_sums()
        fid_key = f"{cfg.eval.split}/fid"
        improved = evaluated and record.get(fid_key, math.inf) < self.best
        if improved:
            self.best = record[fid_key]
        logger.log(record)
        if (e + 1) % cfg.checkpoint_every == 0 or last or improved:
            self.save("last")
        if improved:
            self.save("best")

    def finish(self) -> None:
        """End of training: the progression composite, and best.pt when no FID chose one."""
        grids = self.paths.grids() if self.world.main else []
        if grids:
            composite([p for _, p in grids], [f"epoch {e}" for e, _ in grids],
                      self.paths.progression)
        if not distributed.from_main(self.paths.checkpoint("best").exists):
            # Without validation FID there is no honest "best": best is the final state.
            self.save("best")


def check_new_folder(out: str | Path) -> None:
    """`out` must not hold another run: continuing one is `--resume`. (A folder whose run
    saved no checkpoint holds nothing to continue: training starts it again.)"""
    if RunPaths(Path(out)).has_checkpoint():
        raise CheckpointError(f"{out} already holds a run; continue it with "
                              f"`gankit train --resume {out}` or choose another --out")


def train(cfg: TrainConfig, out: str | Path, progress: Progress = True) -> Path:
    """Train a new run into folder `out` (which must not hold another run), holding its lock
    (training/run_lock.py)."""
    check_new_folder(out)
    with distributed.session(fast.pick_device(cfg.device)) as world:
        out = distributed.from_main(lambda: out)  # one folder, named by rank 0
        with _held(Path(out), world.main):
            check_new_folder(out)   # again, locked: another process may have begun it since
            trainer = Trainer(cfg, out, progress=progress)
            if world.main:
                print(f"gankit: {cfg.preset}: {trainer.model_summary}; "
                      f"{len(trainer.train_ds)} training images; device "
                      f"{trainer.device}{distributed.describe(world)} "
                      f"({fast.describe(trainer.cfg, trainer.device)}); run folder {out}",
                      file=sys.stderr)
            return trainer.run()


def _held(folder: Path, main: bool) -> contextlib.AbstractContextManager:
    """The run folder's lock in the process that writes the run (rank 0 of a distributed
    run: the others write nothing)."""
    return run_lock.held(RunPaths(folder)) if main else contextlib.nullcontext()


def epochs_text(n: int) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{n} epoch{'' if n == 1 else 's'}"


def epochs_left(where: str | Path, epoch: int, batch: int, epochs: int) -> bool:
    """Whether a run whose checkpoint stands at (epoch, batch) (0-based: the next batch to
    train) has any of its `epochs` left. A run is not shortened: a target below what it has
    trained is a ConfigError, raised before anything is written (its metrics, grids and
    checkpoints would otherwise outrun its config)."""
    if epoch > epochs or (epoch == epochs and batch > 0):
        done = epochs_text(epoch) + (f" and {batch} batches" if batch else "")
        raise ConfigError(f"epochs={epochs} is fewer than the {done} {where} has trained; a run "
                          f"is not shortened: give --set epochs=N with N > {epoch} to train on")
    return epoch < epochs


def resume(run_dir: str | Path, epochs: int | None = None, progress: Progress = True,
           which: str = "last", cfg: TrainConfig | None = None) -> Path:
    """Continue a run from checkpoint `which` (last | best | a file), optionally to a new
    number of epochs, with the run's own config or `cfg` (that config with resumable changes,
    e.g. the device). An unreadable last.pt falls back to last.prev.pt, then best.pt, with a
    warning. A run saved before `precision`/`compile` existed continues as it ran
    (`fast.LEGACY`, filled in by `read_config`)."""
    cfg = cfg or read_config(run_dir)
    if epochs is not None:
        cfg.epochs = epochs
    device = fast.pick_device(cfg.device)
    with distributed.session(device) as world, _held(Path(run_dir), world.main):
        # Rank 0 reads the checkpoint (under the lock, so no other process is still writing
        # the run) and hands it to the others (on the CPU).
        state, path = distributed.from_main(lambda: resume_state(
            RunPaths(Path(run_dir)), which, to_dict(cfg),
            "cpu" if world.distributed else device))
        if not epochs_left(run_dir, int(state["epoch"]), int(state["batch"]), cfg.epochs):
            if world.main:
                print(f"gankit: {run_dir} has trained all its {epochs_text(cfg.epochs)}: "
                      "nothing to do (--set epochs=N with a larger N trains on)", file=sys.stderr)
            return Path(run_dir)
        trainer = Trainer(cfg, run_dir, progress=progress)
        trainer.load_state_dict(state)
        if world.main:
            print(f"gankit: resuming {run_dir} from {path.name} at epoch {trainer.epoch + 1}, "
                  f"batch {trainer.batch + 1}{distributed.describe(world)} "
                  f"({fast.describe(trainer.cfg, trainer.device)})", file=sys.stderr)
            if trainer.resume_note:
                print(f"gankit: {trainer.resume_note}", file=sys.stderr)
        return trainer.run()
