"""The run configuration: typed dataclasses with one source of defaults.

A preset is a YAML file of overrides on these defaults. Unknown keys and values of the
wrong type are errors that list the nearest valid keys (nanoGPT's rule, without its exec).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union


class ConfigError(Exception):
    """A configuration key or value that gankit cannot accept; the message says how to fix it."""


@dataclass
class DataConfig:
    name: str = "mnist"            # a key of gankit.data.DATASETS
    limit: int | None = None       # train on the first N training images only
    scale: str = "-1,1"            # "-1,1" (tanh generators) or "0,1" (reports 003, 004 as written)
    rotation: float = 0.0          # random rotation +-degrees per image (report 004: 20)
    data_dir: str | None = None    # a folder with the dataset's files (else GANKIT_DATA / cache)
    classes: list[str] | None = None  # Quick, Draw! categories (one .npy file each)


@dataclass
class ModelConfig:
    arch: str = "mlp"              # a key of gankit.models.ARCHITECTURES
    conditional: bool = True
    nz: int = 100                  # latent size
    g_cond: str = "onehot"         # how G gets the label: onehot | embedding
    d_cond: str = "embedding"      # how D gets the label: onehot | embedding | projection
    embed_dim: int = 10            # size of a learnt label embedding
    init: str = "xavier"           # xavier | dcgan | default
    g_hidden: list[int] = field(default_factory=lambda: [128, 256])   # MLP widths
    d_hidden: list[int] = field(default_factory=lambda: [256, 128])
    ngf: int = 64                  # conv generator width
    ndf: int = 64                  # conv discriminator width
    dropout: float = 0.0
    g_dropout: float = 0.0
    spectral_norm: bool = False
    batch_norm: bool = True


@dataclass
class LossConfig:
    name: str = "nonsaturating"    # a key of gankit.losses.LOSSES
    gp_weight: float = 10.0        # gradient penalty weight (wgan-gp)
    label_smoothing: float = 0.0   # one-sided: real targets 1 - s (BCE losses)
    d_average: bool = False        # D loss = mean of its real and fake terms (report 004), not sum


@dataclass
class OptimConfig:
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    g_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    d_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    schedule: str = "constant"     # constant | piecewise | linear | cosine
    # piecewise: [[epoch, lr], ...] from that epoch on (report 000's M4)
    g_milestones: list[list[float]] = field(default_factory=list)
    d_milestones: list[list[float]] = field(default_factory=list)
    final_factor: float = 0.0      # linear/cosine: lr at the end = lr * final_factor


@dataclass
class EvalConfig:
    every: int = 0                 # FID & co. on the validation split every K epochs (0: off)
    n: int = 10_000                # generated and real images compared
    features: str = "classifier"   # classifier | inception
    split: str = "val"


@dataclass
class TrainConfig:
    preset: str = "default"
    report: str = ""               # the report this preset reproduces
    notes: str = ""                # values the report left open and why they were chosen
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    device: str = "auto"           # auto | cpu | cuda | cuda:N
    # CPU threads for PyTorch (0: PyTorch's default, one per core). Small models run fastest
    # on one thread: their ops are too small to split, and idle threads spin (benchmarks/).
    threads: int = 0
    d_steps: int = 1               # D steps per G step (report 002's "discriminator advantage")
    adaptive_d_steps: bool = False  # report 002: one more D step while D accuracy < threshold
    adaptive_threshold: float = 0.8
    max_d_steps: int = 16
    ema: float = 0.0               # EMA decay of G's weights (0: off); EMA G is used for samples
    sample_every: int = 1          # fixed-noise grid every N epochs
    checkpoint_every: int = 1
    grad_clip: float = 0.0         # 0: off
    val_diagnostics: int = 2048    # validation images used for the held-out diagnostics per epoch
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def to_dict(cfg: Any) -> dict:
    """A plain dict (YAML/JSON-ready) of a config dataclass."""
    return dataclasses.asdict(cfg)


def all_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of a config class, e.g. 'optim.g_lr'."""
    keys = []
    for f in dataclasses.fields(cls):
        t = _field_types(cls)[f.name]
        if dataclasses.is_dataclass(t):
            keys += all_keys(t, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown(key: str, valid: list[str]) -> ConfigError:
    near = difflib.get_close_matches(key, valid, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return ConfigError(f"unknown config key {key!r}{hint} (`gankit presets --keys` lists all)")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check (and gently convert) a value against a type hint, or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r} ({type(value).__name__})")
        (inner,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, inner, key) for v in value]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r} ({type(value).__name__})")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "2e-4" as a string
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r} ({type(value).__name__})")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r} ({type(value).__name__})")
    return value


def from_dict(data: dict, cls: type = TrainConfig, prefix: str = "") -> Any:
    """Build a config from a (possibly partial) nested dict, rejecting unknown keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            raise _unknown(prefix + str(key), all_keys(TrainConfig))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(value, tp, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, tp, prefix + key)
    return cls(**kwargs)


def set_key(data: dict, dotted: str, value: Any) -> None:
    """Set a dotted key (e.g. 'optim.g_lr') in a nested dict, creating levels as needed."""
    valid = all_keys(TrainConfig)
    if dotted not in valid:
        raise _unknown(dotted, valid)
    node = data
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' from the command line; the value is read as YAML (numbers, lists, true)."""
    import yaml
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r} (e.g. --set epochs=3)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def merge(base: dict, over: dict) -> dict:
    """Deep-merge two nested dicts (over wins)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
