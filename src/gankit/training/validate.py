"""`validate(cfg)`: every check a run config can be given before any work starts.

Resolving a config (gankit.config) already refuses unknown keys and wrong types. What it
cannot see needs the registries of the layers above it, so it is checked here, once, by
every entry point (train, resume, sample, eval, explore, sweep, tune) before the first batch:

- ranges (epochs >= 1, 0 <= dropout < 1, learning rates > 0, ...);
- choices, taken from the registries themselves: datasets and splits, data scales, model
  families, inits and label inputs, losses, learning-rate schedules, feature spaces;
- the schedule's milestones, the device, what the evaluation during training needs (a
  reference classifier for the dataset, or torch-fidelity; more samples than feature
  dimensions);
- with `data=True`: the dataset loads (fetched once, here), has labels when the model is
  conditional, and G and D build for its images on PyTorch's meta device (no memory, no
  compute), which runs each family's own checks.

An error names the key, the bad value and the valid values. Settings a model family does
not read (models.registry.FAMILY_FIELDS) are warnings, not errors.
"""
from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch

from gankit.config import ConfigError, LossConfig, ModelConfig, TrainConfig
from gankit.config.keys import get
from gankit.data import DataError, load_arrays, qualified_name
from gankit.data.datasets import DATASETS, SPLITS, split_name
from gankit.data.image import SCALES
from gankit.losses import LOSSES, get_loss
from gankit.metrics.classifier import RECIPES, WeightsError, classifier_for
from gankit.metrics.features import FEATURE_SPACES
from gankit.metrics.inception import FEATURE as INCEPTION_DIM, INSTALL_HINT
from gankit.models import ARCHITECTURES, D_CONDS, D_NORMS, G_CONDS, INITS, build_models
from gankit.models.base import batchnorm_layers
from gankit.models.kernels import KERNELS
from gankit.models.registry import FAMILY_FIELDS, SHARED_FIELDS
from gankit.training import distributed
from gankit.training.augment import parse_policy
from gankit.training.allocator import CPU_ALLOCATORS
from gankit.training.fast import COMPILE_MODES, MEMORY_FORMATS, PRECISIONS, STEPS
from gankit.training.schedules import SCHEDULES

LOG = logging.getLogger("gankit.config")


@dataclass(frozen=True)
class Range:
    """An interval of valid numbers; `open_high` excludes the upper end."""
    low: float
    high: float = math.inf
    open_high: bool = False
    open_low: bool = False

    def __contains__(self, v: float) -> bool:
        above = v > self.low if self.open_low else v >= self.low
        below = v < self.high if self.open_high else v <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return (f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.open_high else ']'}")


# Keys holding numbers (or lists of numbers) and the range every value must lie in.
RANGES: dict[str, Range] = {
    "seed": Range(0), "epochs": Range(1), "batch_size": Range(1), "threads": Range(0),
    "d_steps": Range(1), "d_steps_per_batch": Range(1), "max_d_steps": Range(1),
    "adaptive_threshold": Range(0, 1),
    "ema": Range(0, 1, open_high=True), "ema_rampup": Range(0), "sample_every": Range(1),
    "checkpoint_every": Range(1),
    "log_every": Range(0),
    "grad_clip": Range(0), "val_diagnostics": Range(1),
    "data.limit": Range(1), "data.rotation": Range(0, 180),
    "model.nz": Range(1), "model.embed_dim": Range(1), "model.ngf": Range(1),
    "model.ndf": Range(1), "model.mbstd": Range(0), "model.g_hidden": Range(1),
    "model.truncation_psi": Range(0, open_low=True),
    "model.d_hidden": Range(1),
    "model.dropout": Range(0, 1, open_high=True), "model.g_dropout": Range(0, 1, open_high=True),
    "loss.gp_weight": Range(0), "loss.label_smoothing": Range(0, 1, open_high=True),
    "loss.r1_gamma": Range(0), "loss.r1_every": Range(1), "loss.aux_weight": Range(0),
    "loss.g_aux_weight": Range(0),
    "optim.g_lr": Range(0, open_low=True), "optim.d_lr": Range(0, open_low=True),
    "optim.g_betas": Range(0, 1, open_high=True), "optim.d_betas": Range(0, 1, open_high=True),
    "optim.final_factor": Range(0), "eval.every": Range(0), "eval.n": Range(2),
}
# Keys holding a list of exactly this many numbers.
LENGTHS = {"optim.g_betas": 2, "optim.d_betas": 2}
# The splits a run may train on (the data layer has more: val and test are held out).
TRAIN_SPLITS = ("train", "train-full")
# Fields a model reads only when it is conditional.
CONDITIONAL_FIELDS = ("g_cond", "d_cond", "embed_dim", "aux_classifier")


def choices() -> dict[str, Sequence[str]]:
    """The valid values of every key with a fixed set of them, from the registries."""
    return {"data.name": sorted(DATASETS), "data.split": list(TRAIN_SPLITS),
            "data.scale": list(SCALES),
            "model.arch": list(ARCHITECTURES), "model.init": list(INITS),
            "model.g_cond": list(G_CONDS), "model.d_cond": list(D_CONDS),
            "model.d_norm": list(D_NORMS),
            "loss.name": list(LOSSES), "optim.schedule": list(SCHEDULES),
            "eval.features": list(FEATURE_SPACES), "eval.split": list(SPLITS),
            "precision": list(PRECISIONS), "compile": list(COMPILE_MODES),
            "step": list(STEPS), "memory_format": list(MEMORY_FORMATS),
            "cpu_allocator": list(CPU_ALLOCATORS), "kernels": list(KERNELS)}


def bad_choice(key: str, value: Any, valid: Iterable[str]) -> ConfigError:
    """The error for a value outside a key's choices."""
    return ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(valid)}")


def validate(cfg: TrainConfig, data: bool = True, warn: bool = True,
             world_size: int | None = None) -> list[str]:
    """Raise ConfigError (or DataError) for the first setting of `cfg` that cannot work;
    return the settings that will be ignored (logged as warnings when `warn`).

    `data=False` skips what needs the dataset's files (loading them, building the models):
    for commands that use a trained run without its training data. `warn=False` is for
    commands that use a trained run, to whom unused training settings are noise.
    `world_size`: the processes the run will train on (default: what torchrun says, else 1).
    """
    world_size = distributed.from_env().size if world_size is None else world_size
    _check_ranges(cfg)
    _check_choices(cfg)
    _check_schedule(cfg)
    _check_device(cfg.device)
    _check_eval(cfg)
    get_loss(cfg.loss)  # each loss checks its own options (R1 with wgan-gp, ...)
    parse_policy(cfg.augment)
    distributed.local_batch_size(cfg.batch_size, world_size)
    batchnorm = _check_data_and_models(cfg) if data else None
    warnings = ignored_settings(cfg) + distributed_settings(cfg, world_size, batchnorm)
    for w in warnings if warn else ():
        LOG.warning(w)
    return warnings


def _check_ranges(cfg: TrainConfig) -> None:
    for key, valid in RANGES.items():
        value = get(cfg, key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if key in LENGTHS and len(values) != LENGTHS[key]:
            raise ConfigError(f"{key}={value!r} must hold {LENGTHS[key]} numbers, each in {valid}")
        if isinstance(value, list) and not values:
            raise ConfigError(f"{key}=[] is empty; give at least one value, each {valid}")
        for v in values:
            if not (isinstance(v, (int, float)) and v in valid):
                raise ConfigError(f"{key}={value!r} is out of range; valid: {valid}")


def _check_choices(cfg: TrainConfig) -> None:
    for key, valid in choices().items():
        value = get(cfg, key)
        if key == "data.name":
            try:
                split_name(value)
            except DataError as e:
                raise ConfigError(f"data.name: {e}") from None
        elif value not in valid:
            raise bad_choice(key, value, valid)
    try:
        qualified_name(cfg.data.name, cfg.data.classes)
    except DataError as e:
        raise ConfigError(f"data.classes: {e}") from None


def _check_schedule(cfg: TrainConfig) -> None:
    for key in ("optim.g_milestones", "optim.d_milestones"):
        for m in get(cfg, key):
            if (len(m) != 2 or not float(m[0]).is_integer() or m[0] < 1 or not m[1] > 0):
                raise ConfigError(f"{key}: {m!r} is not a milestone; give [[epoch, lr], ...] with "
                                  "epoch >= 1 (the epochs done before lr applies) and lr > 0, e.g. "
                                  "[[1600, 5e-5]]")


def _check_device(device: str) -> None:
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device={device!r} is not valid; choose one of: auto, cpu, cuda, "
                          "cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        # gankit's kernels and tests cover CPUs and CUDA only; torch accepts more names (mps,
        # xla, ...) and would fail on them deep inside the first `.to(device)`
        raise ConfigError(f"device={device!r}: gankit runs on cpu or cuda only; use "
                          "device=cpu, cuda, cuda:N or auto")
    if dev.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"device={device!r}, but PyTorch sees no CUDA device here; use "
                          "device=cpu (or auto)")
    if dev.index is not None and dev.index >= (count := torch.cuda.device_count()):
        raise ConfigError(f"device={device!r}, but PyTorch sees {count} CUDA device(s) here "
                          f"(cuda:0 to cuda:{count - 1})")


def _check_eval(cfg: TrainConfig) -> None:
    """What evaluating during training (eval.every > 0) needs, checked before training."""
    e = cfg.eval
    if e.every == 0:
        return
    base, _ = split_name(cfg.data.name)
    if e.features == "classifier":
        try:
            dim = RECIPES[classifier_for(base)].feature_dim
        except WeightsError as err:
            raise ConfigError(f"eval.features=classifier: {err}") from None
    else:
        if importlib.util.find_spec("torch_fidelity") is None:
            raise ConfigError(f"eval.features=inception: {INSTALL_HINT}")
        dim = int(INCEPTION_DIM)
    if e.n <= dim:
        raise ConfigError(f"eval.n={e.n} is too small for eval.features={e.features}: FID needs "
                          f"more samples than feature dimensions ({dim}); use eval.n > {dim} "
                          "(10000 is the convention)")


def _check_data_and_models(cfg: TrainConfig) -> bool | None:
    """Load the data's validation split and build G and D on the meta device; True when
    they have BatchNorm layers (None when the meta device could not build them)."""
    d = cfg.data
    arrays = load_arrays(qualified_name(d.name, d.classes), "val", d.data_dir)
    shape = tuple(int(s) for s in arrays.images.shape[1:])
    classes = 0 if arrays.labels is None else len(arrays.classes)
    try:
        with torch.device("meta"):
            G, D = build_models(cfg.model, shape, classes)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - the meta device's own limits, not the config's
        return None
    return bool(batchnorm_layers(G) or batchnorm_layers(D))


def distributed_settings(cfg: TrainConfig, world_size: int, batchnorm: bool | None) -> list[str]:
    """Warnings about `model.sync_bn` for a run on `world_size` processes whose models have
    BatchNorm layers (`batchnorm`; None: unknown)."""
    local = cfg.batch_size // world_size
    if cfg.model.sync_bn and batchnorm is False:
        return [f"model.sync_bn=true is ignored: model.arch={cfg.model.arch} (as configured) "
                "has no BatchNorm layer"]
    if world_size > 1 and batchnorm and not cfg.model.sync_bn:
        return [f"BatchNorm normalises over each process's {local} images, not the global "
                f"batch of {cfg.batch_size}; set model.sync_bn=true for the statistics of the "
                "global batch (one process's numbers)"]
    return []


def ignored_settings(cfg: TrainConfig) -> list[str]:
    """One line per setting that will not be used: a model setting changed from its default
    that the model does not read, milestones the schedule does not reach or read."""
    m, default = cfg.model, ModelConfig()
    reads = set(SHARED_FIELDS) | set(FAMILY_FIELDS.get(m.arch, ()))
    out = []
    for name in vars(m):
        if name == "sync_bn" or getattr(m, name) == getattr(default, name):  # see distributed_settings
            continue
        if name not in reads:
            out.append(f"model.{name}={getattr(m, name)!r} is ignored by model.arch={m.arch} "
                       f"(it reads {', '.join(sorted(FAMILY_FIELDS.get(m.arch, ()))) or 'none'}"
                       " besides the shared settings)")
        elif name in CONDITIONAL_FIELDS and not m.conditional:
            out.append(f"model.{name}={getattr(m, name)!r} is ignored: model.conditional=false")
    if cfg.ema_rampup and not cfg.ema:
        out.append(f"ema_rampup={cfg.ema_rampup:g} is ignored: ema=0 (no EMA of G to warm up)")
    if cfg.loss.r1_every != 1 and not cfg.loss.r1_gamma:
        out.append(f"loss.r1_every={cfg.loss.r1_every} is ignored: loss.r1_gamma=0 (R1 off)")
    for key in ("aux_weight", "g_aux_weight"):
        value = getattr(cfg.loss, key)
        if value != getattr(LossConfig(), key) and not cfg.model.aux_classifier:
            out.append(f"loss.{key}={value:g} is ignored: "
                       "model.aux_classifier=false (D has no classifier head)")
    o = cfg.optim
    milestones = o.g_milestones + o.d_milestones
    if o.schedule != "piecewise" and milestones:
        out.append(f"optim.g_milestones/d_milestones are ignored by "
                   f"optim.schedule={o.schedule} (only piecewise reads them)")
    late = sorted({int(e) for e, _ in milestones if e >= cfg.epochs})
    if o.schedule == "piecewise" and late:
        out.append(f"optim milestones at epoch {', '.join(map(str, late))} are not before "
                   f"the end ({cfg.epochs} epochs): those learning rates are never used")
    return out
