"""Training one run on several processes: DistributedDataParallel under torchrun.

Everything distributed lives here; the Trainer asks this module and stays one loop.

- **The world.** torchrun (or `gankit train --nproc N`, which starts torchrun's elastic agent,
  `launch`) sets RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE for each process; `World`
  reads them. WORLD_SIZE 1 or unset is the ordinary single process, untouched by this module.
- **The process group.** `session(device)` joins it (gloo on CPU, NCCL on CUDA) with a bounded
  timeout (`GANKIT_DDP_TIMEOUT` seconds, default 1800: longer than rank 0's slowest evaluation,
  during which the other ranks wait) and translates a collective that fails because another
  rank died into one `DistributedError` line; a worker ends with `end_worker` (no teardown).
- **The batch.** `batch_size` is the global batch: each rank trains on a contiguous slice of
  every global batch of the epoch's permutation (the same permutation on all ranks, from the
  run's seed: `gankit.data.loader.shard`). The noise `z` is drawn for the whole global batch
  from the run's noise generator on every rank, and each rank keeps its slice: two processes
  then see exactly the noise one process sees, and the run's noise does not depend on the
  world size. Everything else random (dropout, the gradient penalty's mixing) draws from each
  rank's own default generator, seeded from (seed, rank) (`rank_seed`).
- **The models.** G and D are wrapped in DistributedDataParallel for the training step (their
  gradients are averaged over ranks during backward); `model.sync_bn` first converts their
  BatchNorm layers to `SyncBatchNorm` (`sync_batchnorm`; on CPU our own `CPUSyncBatchNorm`).
- **Writing.** Rank 0 alone writes logs, grids, checkpoints and evaluations (`is_main`);
  the logged statistics are averaged over ranks first (`mean`), decisions rank 0 takes
  (an evaluation's FID, a checkpoint to resume from) reach every rank (`from_main`), and every
  rank's RNG state and partial sums are gathered into the checkpoint (`gather`).
"""
from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gankit.config import ConfigError
from gankit.data.loader import shard
from gankit.errors import GankitError
from gankit.models import fast_batchnorm
from gankit.training.cores import cores_per_process

T = TypeVar("T")
TIMEOUT_ENV = "GANKIT_DDP_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800
ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


class DistributedError(GankitError):
    """A distributed run that cannot start or lost one of its processes."""
    exit_code = 4


class Stopped(GankitError):
    """A distributed run stopped by a signal after its processes saved a checkpoint."""
    exit_code = 130
    kind = "stopped"


@dataclass(frozen=True)
class World:
    """This process's place in the run: global rank and size, rank and size on its machine."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env(env: Mapping[str, str] | None = None) -> World:
    """The World torchrun describes in the environment (one process when it says nothing)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return World()
    try:
        size = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", 0))
        local_rank = int(env.get("LOCAL_RANK", rank))
        local_size = int(env.get("LOCAL_WORLD_SIZE", size))
    except ValueError:
        raise DistributedError("RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE must be integers, got "
                               + ", ".join(f"{k}={env.get(k)!r}" for k in ENV_KEYS)) from None
    if not (size >= 1 and 0 <= rank < size and 0 <= local_rank < local_size):
        raise DistributedError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={size}"
                               f", LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_size}")
    return World(rank, size, local_rank, local_size)


def is_main() -> bool:
    """True in the process that writes the run's files (rank 0, or the only process)."""
    return from_env().main


def current() -> World:
    """The world of the process group this process has joined (one process when none)."""
    if dist.is_available() and dist.is_initialized():
        return from_env()
    return World()


def local_batch_size(batch_size: int, world_size: int) -> int:
    """The images each rank trains on per step: the global `batch_size` split evenly."""
    if batch_size % world_size:
        lower = batch_size - batch_size % world_size
        raise ConfigError(f"batch_size={batch_size} is the global batch and must split evenly "
                          f"over {world_size} processes; use a multiple of {world_size} "
                          f"(e.g. {lower or world_size} or {lower + world_size})")
    return batch_size // world_size


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of rank `rank`'s own generator, from the run's seed (and, when a run resumes
    on another number of processes, the step it resumes at, so no stream is replayed)."""
    return (seed * 1_000_003 + (rank + 1) * 7_919 + step * 104_729) % (2**63)


def timeout_s() -> float:
    """The process group's timeout: how long a rank waits for the others at a collective."""
    text = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r} must be a positive number of seconds")
    return value


def device_for(device: torch.device, world: World) -> torch.device:
    """CUDA without an index is this process's own GPU (LOCAL_RANK) in a distributed run."""
    if world.distributed and device.type == "cuda" and device.index is None:
        return torch.device("cuda", world.local_rank)
    return device


# ---- the process group -----------------------------------------------------------------
def _lost_peer(e: BaseException) -> bool:
    """True for the errors a collective raises when another rank died or never came."""
    if isinstance(e, dist.DistError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        w in text for w in ("Connection closed", "Connection reset", "Gloo", "gloo", "NCCL",
                            "Broken pipe", "timed out", "Timed out"))


@contextmanager
def session(device: torch.device) -> Iterator[World]:
    """Join the process group torchrun describes (nothing for one process), yield the World,
    and leave the group at the end. A collective that fails because another rank died (or
    timed out) becomes one DistributedError line naming this rank."""
    world = from_env()
    if not world.distributed or dist.is_initialized():
        yield current()
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device_for(device, world))
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()))
    except (RuntimeError, ValueError) as e:
        raise DistributedError(f"rank {world.rank}: could not join the other {world.size - 1} "
                               f"processes ({_first_line(e)}); check MASTER_ADDR/MASTER_PORT or "
                               "--rdzv-endpoint") from None
    try:
        yield world
    except Exception as e:  # noqa: BLE001 - only a lost peer is translated, the rest re-raised
        if isinstance(e, GankitError) or not _lost_peer(e):
            raise
        raise DistributedError(
            f"rank {world.rank}: another process of this run stopped or stopped answering "
            f"({_first_line(e)}); this process stops too. The last checkpoint is kept: resume "
            "with `gankit train --resume RUN --nproc N`") from None
    # The group is not destroyed here: it lives until the process ends, which for a torchrun
    # worker is `os._exit` after flushing (`end_worker`). Tearing gloo's group down while
    # DDP's reducer still holds it deadlocked here (Intel Xeon, busy machine): the main thread,
    # holding the GIL, joins gloo's worker thread in ~ProcessGroupGloo while that thread waits
    # for the GIL to release the tensors of the run's last broadcast (py-spy --native).


def end_worker(code: int) -> None:
    """End a torchrun worker process with exit `code` once its output is flushed, without
    Python's teardown (see `session`: destroying the process group can deadlock); does
    nothing in an ordinary process."""
    if not under_torchrun():
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


# ---- collectives (no-ops for one process) ----------------------------------------------
def mean(t: torch.Tensor) -> torch.Tensor:
    """`t` averaged over ranks (so rank 0 logs the run's means, not its own)."""
    if not current().distributed:
        return t
    out = t.detach().clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any rank (a stop signal reaches them all)."""
    if not current().distributed:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather(obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere); [obj] for one process."""
    world = current()
    if not world.distributed:
        return [obj]
    out: list[Any] | None = [None] * world.size if world.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def from_main(fn: Callable[[], T]) -> T:
    """Run `fn` on rank 0 and give its result (or its GankitError) to every rank. Any other
    error on rank 0 still reaches the others (as a DistributedError), so none waits for a
    broadcast that never comes; rank 0 raises the original."""
    if not current().distributed:
        return fn()
    box: list[Any] = [None]
    failure: BaseException | None = None
    if current().main:
        try:
            box[0] = ("ok", fn())
        except GankitError as e:
            box[0] = ("error", e)
        except Exception as e:  # noqa: BLE001 - the others must hear of it, or they wait
            failure = e
            box[0] = ("error", DistributedError(f"rank 0 failed ({_first_line(e)}); "
                                                "this process stops too"))
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if failure is not None:
        raise failure
    if kind == "error":
        raise value
    return value


# ---- models ----------------------------------------------------------------------------
class _Summed(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of a sum over ranks is the sum over ranks
    of the gradients (torch.distributed.nn's all_reduce, which is deprecated)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


def _summed(t: torch.Tensor) -> torch.Tensor:
    return _Summed.apply(t)


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """SyncBatchNorm for CPU processes (gloo): torch's `nn.SyncBatchNorm` has GPU kernels only
    (and DDP refuses it on CPU modules).

    In training mode the batch mean and variance are those of the global batch, from two
    differentiable all-reduces (sums and count, then squared deviations): the numbers one
    process computes for the whole batch, up to summation order. Gradients flow back through
    the all-reduces, as through torch's SyncBatchNorm. Same parameters, buffers and state_dict
    keys as the BatchNorm it replaces; outside training it is that BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.track_running_stats or not current().distributed:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float32)
        sums = _summed(torch.cat([xf.sum(dims), count]))
        n = sums[-1]
        mu = sums[:-1] / n
        var = _summed((xf - mu.view(shape)).pow(2).sum(dims)) / n
        y = (xf - mu.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                 else self.momentum)
            self.running_mean.lerp_(mu.detach(), m)
            self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1), m)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` with its BatchNorm layers converted in place to synchronised ones (torch's
    `convert_sync_batchnorm`: same parameters and buffers, same state_dict keys); on CPU to
    `CPUSyncBatchNorm`. A BatchNorm fused with its activation (`kernels: fast`) is unfused
    first: the synchronised layer computes the statistics, the activation module applies
    itself again."""
    fast_batchnorm.fuse([module], False)
    module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if device.type == "cpu":
        for m in module.modules():
            if type(m) is nn.SyncBatchNorm:
                m.__class__ = CPUSyncBatchNorm
    return module


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` in DistributedDataParallel (gradients averaged over ranks in backward).

    Buffers are synced once, not at every forward: BatchNorm trains on batch statistics, and
    the running statistics only rank 0 uses (grids, evaluation, checkpoints) are rank 0's own.
    """
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)


# ---- launching -------------------------------------------------------------------------
def under_torchrun() -> bool:
    """True inside a process torchrun started."""
    return "TORCHELASTIC_RUN_ID" in os.environ or from_env().distributed


def launch(nproc: int, argv: list[str], run_dir: str) -> int:
    """Run `python -m gankit ARGV` in `nproc` processes on this machine under torchrun's
    elastic agent (`torchrun --standalone --nproc_per_node N --max-restarts 0`), each with
    cores / N threads. When one process fails, the agent stops the others (SIGTERM, then
    SIGKILL after 30 s) and this raises one DistributedError naming it. Ctrl-C or SIGTERM
    reaches every process through the agent: they save a checkpoint and stop (exit code 130)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch
    if under_torchrun():
        raise DistributedError("--nproc starts torchrun itself; inside torchrun, drop --nproc")
    os.environ.setdefault("OMP_NUM_THREADS", str(cores_per_process(nproc)))
    # The agent's own log lines (a worker's exit, closing signals) become our one message;
    # each of its modules' loggers has its level set when imported.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    try:
        elastic_launch(config, sys.executable)("-m", "gankit", *argv)
    except SignalException as e:
        raise Stopped(f"stopped by {signal.Signals(e.sigval).name}: processes that were "
                      f"training saved a checkpoint in {run_dir} first; continue with `gankit "
                      f"train --resume {run_dir} --nproc {nproc}` (or start again if it holds "
                      "none)") from None
    except ChildFailedError as e:
        # the root cause: a process killed by a signal, else the first to fail
        rank, failure = min(e.failures.items(),
                            key=lambda kv: (kv[1].exitcode >= 0, kv[1].timestamp))
        codes = {f.exitcode for f in e.failures.values()}
        if failure.exitcode > 0 and codes <= {failure.exitcode, DistributedError.exit_code}:
            return failure.exitcode  # a gankit error: the process printed it already
        how = (f"was killed by {signal.Signals(-failure.exitcode).name}" if failure.exitcode < 0
               else f"exited with code {failure.exitcode}")
        raise DistributedError(
            f"process {rank} of {nproc} (pid {failure.pid}) {how}; every process of the run was "
            f"stopped. The last checkpoint in {run_dir}/checkpoints is intact: continue with "
            f"`gankit train --resume {run_dir} --nproc {nproc}`") from None
    return 0


# ---- the Trainer's distributed parts -----------------------------------------------------
def describe(world: World) -> str:
    """'; N processes (DistributedDataParallel, BACKEND)' for messages, '' for one process."""
    if not world.distributed:
        return ""
    return f"; {world.size} processes (DistributedDataParallel, {dist.get_backend()})"


def setup(trainer: Any) -> tuple[nn.Module, nn.Module]:
    """Make a Trainer distributed when its world is: check that the global batch splits,
    convert BatchNorm for `model.sync_bn`, wrap G and D in DDP, and seed the rank's own
    generator; returns the (G, D) a training step runs (G and D themselves for one process)."""
    world, cfg = trainer.world, trainer.cfg
    if not world.distributed:
        return trainer.G, trainer.D
    local_batch_size(cfg.batch_size, world.size)
    if cfg.model.sync_bn:
        sync_batchnorm(trainer.G, trainer.device)
        sync_batchnorm(trainer.D, trainer.device)
    # Model initialisation used the run's seed on every rank (and DDP broadcasts rank 0's
    # weights anyway); from here on each rank draws its dropout masks and gradient-penalty
    # mixing from its own stream.
    torch.manual_seed(rank_seed(cfg.seed, world.rank))
    trainer.gp_gen = None
    return wrap(trainer.G, trainer.device), wrap(trainer.D, trainer.device)


def noise(trainer: Any, n: int) -> tuple[torch.Tensor, float]:
    """(z, scale) for a step on `n` images: the noise of the whole global batch drawn from the
    run's noise generator, this rank's slice of it, and the factor that makes the average of
    the ranks' mean losses the global batch's mean loss (1 unless the last batch split
    unevenly)."""
    G, gen, device = trainer.G, trainer.noise_gen, trainer.device
    if not trainer.world.distributed:
        return torch.randn(n, G.nz, generator=gen, device=device), 1.0
    start, stop = trainer.loader.bounds(trainer.batch)
    lo, hi = shard(0, stop - start, trainer.world.rank, trainer.world.size)
    z = torch.randn(stop - start, G.nz, generator=gen, device=device)[lo:hi]
    return z, n * trainer.world.size / (stop - start)


def _rank_state(trainer: Any) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(trainer.device) if trainer.device.type == "cuda"
            else None,
            "d": trainer.d_sum.cpu(), "g": trainer.g_sum.cpu()}


def add_ranks(trainer: Any, state: dict[str, Any]) -> bool:
    """Gather every rank's RNG state and partial epoch sums into checkpoint `state` (as
    state["rng"]["ranks"], with state["world_size"]); True on the rank that writes it."""
    if not trainer.world.distributed:
        return True
    ranks = gather(_rank_state(trainer))
    state["world_size"] = trainer.world.size
    state["rng"]["ranks"] = ranks
    return trainer.world.main


def load_ranks(trainer: Any, state: dict[str, Any]) -> str | None:
    """Restore this rank's RNG state and partial sums from a checkpoint `add_ranks` wrote.

    Same world size: each rank continues exactly where it was (bit-identical). Another world
    size: the data order, noise, models, optimisers and position continue as saved; each rank's
    own stream is re-derived from (seed, rank, step), and every rank starts from the mean of
    the saved ranks' partial epoch sums. Returns a message saying so then, else None."""
    world = trainer.world
    saved = int(state.get("world_size", 1))
    if saved == world.size == 1:
        return None
    if saved == world.size:
        mine = state["rng"]["ranks"][world.rank]
        torch.set_rng_state(mine["torch"])
        if mine["cuda"] is not None and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], trainer.device)
        trainer.d_sum, trainer.g_sum = mine["d"].to(trainer.device), mine["g"].to(trainer.device)
        return None
    torch.manual_seed(rank_seed(trainer.cfg.seed, world.rank, trainer.step))
    if saved > 1:
        ranks = state["rng"]["ranks"]
        trainer.d_sum = torch.stack([r["d"] for r in ranks]).mean(0).to(trainer.device)
        trainer.g_sum = torch.stack([r["g"] for r in ranks]).mean(0).to(trainer.device)
    return (f"this run trained on {saved} process{'es' if saved > 1 else ''} and continues on "
            f"{world.size} from step {trainer.step}: data order, noise, weights, optimiser "
            "state and position continue as saved; each process's own random stream (dropout, "
            "gradient-penalty mixing) is re-derived from (seed, rank, step), gradients are "
            "summed in another order, and BatchNorm without model.sync_bn normalises over "
            f"{trainer.cfg.batch_size // world.size} images per process, so the run is no longer "
            f"bit-identical to one that stayed on {saved}")


class Silent:
    """Stands in for the logger on ranks other than 0: every call does nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None
