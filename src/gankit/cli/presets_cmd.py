"""`gankit presets`: list the named presets, one line each."""
from __future__ import annotations

import argparse

from gankit.config import all_keys, preset_dict, preset_names


def run(args: argparse.Namespace) -> int:
    if args.keys:
        print("\n".join(all_keys()))
        return 0
    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_dict(name).get('report', '')}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the named presets (one line each)",
                       description="List the presets that `gankit train --preset NAME` accepts.")
    p.add_argument("--keys", action="store_true", help="list every config key --set accepts")
    p.set_defaults(func=run)
