"""Named presets: YAML files in config/presets/, each a set of overrides on the defaults."""
from __future__ import annotations

import difflib
from importlib import resources
from typing import Any, Iterable

import yaml

from gankit.config.keys import from_dict, merge, overrides_dict
from gankit.config.schema import ConfigError, TrainConfig, to_dict


def preset_names() -> list[str]:
    """Every preset shipped in the package, sorted."""
    folder = resources.files("gankit.config") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_dict(name: str) -> dict:
    """The raw YAML mapping of a preset."""
    names = preset_names()
    if name not in names:
        near = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise ConfigError(f"no preset named {name!r}.{hint} `gankit presets` lists them all.")
    text = (resources.files("gankit.config") / "presets" / f"{name}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    data.setdefault("preset", name)
    return data


def resolve(name: str = "default", overrides: Iterable[str] | dict[str, Any] = ()) -> TrainConfig:
    """Preset `name` with `overrides` ("key=value" strings or a {dotted key: value} dict)."""
    return from_dict(merge(preset_dict(name), overrides_dict(overrides)))


def dump(cfg: TrainConfig) -> str:
    """The resolved config as YAML (what a run folder stores)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
