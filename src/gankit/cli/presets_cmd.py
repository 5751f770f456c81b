"""`gankit presets`: list the named presets (one line each), or every config key."""
from __future__ import annotations

import argparse
import typing

from gankit.config import TrainConfig, all_keys, preset_dict, preset_names
from gankit.config.keys import get, key_type


def type_name(tp: object) -> str:
    return str(tp) if typing.get_args(tp) else getattr(tp, "__name__", str(tp))


def list_keys() -> str:
    """One line per key: name, type, default and its valid values (choices from the
    registries, or a range)."""
    from gankit.training.validate import RANGES, choices  # the registries import PyTorch
    valid, default = choices(), TrainConfig()
    rows = [(k, type_name(key_type(k)), repr(get(default, k)),
             " | ".join(valid[k]) if k in valid else str(RANGES.get(k, "")))
            for k in all_keys()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{k:<{widths[0]}}  {t:<{widths[1]}}  {d:<{widths[2]}}  {c}".rstrip()
                     for k, t, d, c in rows)


def run(args: argparse.Namespace) -> int:
    if args.keys:
        print(list_keys())
        return 0
    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_dict(name).get('report', '')}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the named presets (one line each)",
                       description="List the presets that `gankit train --preset NAME` accepts.")
    p.add_argument("--keys", action="store_true",
                   help="list every config key --set accepts: type, default, choices")
    p.set_defaults(func=run)
