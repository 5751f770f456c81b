"""Tune files: the study a `gankit tune` runs, read and checked in full before any trial.

A tune file (YAML):

    preset: dcgan-r004
    set: {epochs: 5, eval.every: 1, eval.n: 2000}     # every trial; eval.every must be > 0
    space:
      optim.g_lr: {low: 1.0e-5, high: 1.0e-3, log: true}
      optim.d_lr: {low: 1.0e-5, high: 1.0e-3, log: true}
      model.nz: {choices: [32, 64, 128]}
      batch_size: {low: 32, high: 256, step: 32}      # an int key: integers
    pruner: {startup_trials: 5, warmup_epochs: 1}     # or `pruner: none`
    trials: 20                                        # default for --trials

A preset name instead of a file tunes DEFAULT_SPACE (both learning rates) with
eval.every = 1.
"""
from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from gankit.config import (ConfigError, TrainConfig, keys, load_yaml, preset_names,
                           resolve)
from gankit.sweeps.preflight import preflight
from gankit.sweeps.spec import check_top_keys, flatten, overrides_dict, yaml_value

TUNE_KEYS = ("preset", "description", "set", "space", "pruner", "trials", "sampler_seed")
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "optim.g_lr": {"low": 1e-5, "high": 1e-3, "log": True},
    "optim.d_lr": {"low": 1e-5, "high": 1e-3, "log": True},
}


@dataclass
class Param:
    """One dimension of the search space."""
    key: str
    kind: str                       # "float" | "int" | "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list[Any] = field(default_factory=list)

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            # Optuna keeps scalars only: lists (e.g. betas) are offered as their YAML text.
            if all(_scalar(c) for c in self.choices):
                return trial.suggest_categorical(self.key, self.choices)
            text = trial.suggest_categorical(self.key, [yaml_value(c) for c in self.choices])
            return yaml.safe_load(text)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high),
                                   step=self.step, log=self.log)

    def corners(self) -> list[Any]:
        """Values that check the key and its types before anything runs."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


@dataclass
class TuneSpec:
    """A checked tune file: the preset, fixed overrides and the space every trial draws from."""
    name: str                       # default study name
    preset: str
    common: dict[str, Any]          # `set:`
    cli: dict[str, Any]             # command-line --set (applied last)
    space: list[Param]
    pruner: dict[str, int] | None   # None: no pruning
    trials: int | None
    sampler_seed: int | None
    description: str = ""

    def config(self, params: dict[str, Any]) -> TrainConfig:
        return resolve(self.preset, {**self.common, **params, **self.cli})

    def command(self, params: dict[str, Any]) -> str:
        """The `gankit train` command that trains a trial's config again."""
        over = {**self.common, **params, **self.cli}
        sets = " ".join(f"--set {k}={_shell(yaml_value(v))}" for k, v in over.items())
        return f"gankit train --preset {self.preset} {sets}".strip()


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _shell(text: str) -> str:
    return shlex.quote(text)


def load_tune(name_or_path: str | Path, extra: Iterable[str] | dict[str, Any] = ()
              ) -> TuneSpec:
    """A tune file, or a preset name (DEFAULT_SPACE, eval every epoch); checked in full."""
    path = Path(name_or_path)
    if path.is_file():
        data = load_yaml(path.read_text(), f"tune file {path}")
        return parse_tune(data, path.stem, str(path), extra)
    name = str(name_or_path)
    if name in preset_names():
        return parse_tune({"preset": name, "set": {"eval.every": 1},
                           "space": DEFAULT_SPACE}, name, f"preset {name}", extra)
    near = difflib.get_close_matches(name, preset_names(), n=3, cutoff=0.4)
    hint = f" Presets with a close name: {', '.join(near)}." if near else ""
    raise ConfigError(f"{name!r} is neither a tune file nor a preset.{hint}")


def parse_tune(data: Any, name: str = "tune", source: str = "<dict>",
               extra: Iterable[str] | dict[str, Any] = ()) -> TuneSpec:
    where = f"tune file {source}"
    check_top_keys(data, TUNE_KEYS, where, "preset:, set: and space:")
    preset = data.get("preset", "default")
    common = flatten(data.get("set") or {}, f"{where}, set:", allow_preset=False)
    cli = overrides_dict(extra, "--set")
    space = parse_space(data.get("space"), where)
    both = [p.key for p in space if p.key in common or p.key in cli]
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} is searched (space:) and also fixed "
                          "(set: or --set); keep one")
    pruner = parse_pruner(data.get("pruner", {}), where)
    trials = data.get("trials")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise ConfigError(f"{where}: trials: expected a positive integer, got {trials!r}")
    seed = data.get("sampler_seed")
    spec = TuneSpec(name=name, preset=preset, common=common, cli=cli, space=space,
                    pruner=pruner, trials=trials, sampler_seed=seed,
                    description=str(data.get("description") or ""))
    check_spec(spec, where)
    return spec


def parse_space(space: Any, where: str) -> list[Param]:
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: space: is empty; give config keys to search, e.g. "
                          "space: {optim.g_lr: {low: 1.0e-5, high: 1.0e-3, log: true}}")
    params = []
    for key, spec in space.items():
        if key == "preset":
            raise ConfigError(f"{where}: space: preset cannot be searched; one study, one preset")
        keys.check_key(str(key), f"{where}: space:")
        at = f"{where}: space: {key}:"
        if not isinstance(spec, dict):
            raise ConfigError(f"{at} expected {{low, high[, log, step]}} or {{choices: [...]}}, "
                              f"got {spec!r}")
        unknown = set(spec) - {"low", "high", "log", "step", "choices"}
        if unknown:
            raise ConfigError(f"{at} unknown field(s) {', '.join(map(str, unknown))} "
                              "(use low, high, log, step or choices)")
        if "choices" in spec:
            choices = spec["choices"]
            if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
                raise ConfigError(f"{at} choices: expected a non-empty list (and nothing else)")
            params.append(Param(str(key), "choice", choices=choices))
            continue
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{at} give both low and high (or choices: [...])")
        tp = keys.key_type(str(key))
        if tp not in (int, float):
            raise ConfigError(f"{at} {key} is not a number; search it with choices: [...]")
        try:
            low, high = float(spec["low"]), float(spec["high"])
            step = None if spec.get("step") is None else float(spec["step"])
        except (TypeError, ValueError):
            raise ConfigError(f"{at} low/high/step must be numbers") from None
        log = bool(spec.get("log", False))
        if not low < high:
            raise ConfigError(f"{at} low ({low:g}) must be below high ({high:g})")
        if log and low <= 0:
            raise ConfigError(f"{at} log: true needs low > 0")
        if log and step is not None and tp is float:
            raise ConfigError(f"{at} log and step cannot be combined for a float")
        if tp is int:
            if not (low.is_integer() and high.is_integer()):
                raise ConfigError(f"{at} {key} is an integer key: low and high must be integers")
            params.append(Param(str(key), "int", int(low), int(high), log,
                                None if step is None else int(step)))
        else:
            params.append(Param(str(key), "float", low, high, log, step))
    return params


def parse_pruner(spec: Any, where: str) -> dict[str, int] | None:
    if spec in (None, "none", False):
        return None
    if spec == "median":
        spec = {}
    if not isinstance(spec, dict) or set(spec) - {"startup_trials", "warmup_epochs"}:
        raise ConfigError(f"{where}: pruner: expected none, median or "
                          "{startup_trials: N, warmup_epochs: E}")
    return {"startup_trials": int(spec.get("startup_trials", 5)),
            "warmup_epochs": int(spec.get("warmup_epochs", 1))}


def check_spec(spec: TuneSpec, where: str) -> None:
    """Resolve the corners of the space: a bad key or value fails here, before any trial."""
    base = spec.config({})
    if base.eval.every <= 0:
        raise ConfigError(f"{where}: tuning minimises validation FID, so it needs eval.every "
                          "> 0 (e.g. set: {eval.every: 1} in the tune file, or --set "
                          "eval.every=1)")
    configs = [(where, base)]
    for p in spec.space:
        for value in p.corners():
            try:
                configs.append((f"{where}: space: {p.key}={yaml_value(value)}",
                                spec.config({p.key: value})))
            except ConfigError as e:
                raise ConfigError(f"{where}: space: {p.key}: {e}") from None
    preflight(configs)
