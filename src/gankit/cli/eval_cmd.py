"""`gankit eval` (being built)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="(being built)")
    p.set_defaults(func=lambda args: print("gankit eval: not built yet") or 1)
