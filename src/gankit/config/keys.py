"""Dotted config keys ('optim.g_lr'): the one module that walks, checks, reads, writes,
flattens and compares them.

Sweeps, tuning, summaries, reports and checkpoints all go through these functions, so a key
means the same thing everywhere and an unknown key or a wrong type is the same clear error
(it names the nearest valid keys: nanoGPT's rule, without its exec).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from typing import Any, Iterable, Union

import yaml

from gankit.config.schema import ConfigError, TrainConfig, to_dict


def all_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of a config class, e.g. 'optim.g_lr'."""
    return [prefix + k for k in _keys_of(cls)]


@functools.cache
def _keys_of(cls: type) -> tuple[str, ...]:
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        t = _field_types(cls)[f.name]
        keys += [f"{f.name}.{k}" for k in _keys_of(t)] if dataclasses.is_dataclass(t) \
            else [f.name]
    return tuple(keys)


# Cached: get_type_hints evaluates every annotation string again at each call (these modules
# use `from __future__ import annotations`); loading every report's sweeps, where each set key
# walked the schema, took 20 s with it uncached and takes 0.5 s.
@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def unknown_key(key: str, valid: list[str] | None = None) -> ConfigError:
    """The error for an unknown key, naming the nearest valid ones."""
    valid = all_keys() if valid is None else valid
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
        if isinstance(value, bool):  # YAML 1.1 reads on/off (and yes/no) as booleans:
            return "on" if value else "off"  # `compile: on`, `--set compile=on`
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
            raise unknown_key(prefix + str(key), all_keys(TrainConfig))
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
        raise unknown_key(dotted, valid)
    node = data
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' from the command line; the value is read as YAML (numbers, lists, true)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r} (e.g. --set epochs=3)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def overrides_dict(overrides: Iterable[str] | dict[str, Any]) -> dict:
    """A nested dict of overrides given as "key=value" strings or a {dotted key: value} dict;
    an unknown key is a ConfigError naming the nearest valid ones."""
    pairs = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
    nested: dict = {}
    for key, value in pairs:
        set_key(nested, key, value)
    return nested


def apply(cfg: TrainConfig, overrides: Iterable[str] | dict[str, Any]) -> TrainConfig:
    """A copy of `cfg` with `overrides` ("key=value" strings or {dotted key: value}), typed."""
    return from_dict(merge(to_dict(cfg), overrides_dict(overrides)))


def merge(base: dict, over: dict) -> dict:
    """Deep-merge two nested dicts (over wins)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def check_key(dotted: str, where: str = "") -> None:
    """An unknown dotted key is a ConfigError naming the nearest valid keys (after `where`)."""
    valid = all_keys()
    if dotted not in valid:
        e = unknown_key(dotted, valid)
        raise ConfigError(f"{where} {e}".strip()) from None


def key_type(dotted: str) -> Any:
    """The type hint of a dotted key, Optional removed (int, float, str, list[...], ...)."""
    check_key(dotted)
    tp: Any = TrainConfig
    for part in dotted.split("."):
        tp = _field_types(tp)[part]
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def get(node: Any, dotted: str) -> Any:
    """The value at a dotted key of a config dataclass or a nested dict."""
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: leaf value} of a nested dict or config dataclass (keys are not checked)."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def diff(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) for every leaf that differs, sorted by key.

    A key in `ignore` is skipped, with everything below it.
    """
    fa, fb = flatten(a), flatten(b)
    out = []
    for key in sorted(set(fa) | set(fb)):
        if any(key == i or key.startswith(i + ".") for i in ignore):
            continue
        if fa.get(key) != fb.get(key):
            out.append((key, fa.get(key), fb.get(key)))
    return out
