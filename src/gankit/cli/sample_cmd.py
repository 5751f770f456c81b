"""`gankit sample` (being built)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="(being built)")
    p.set_defaults(func=lambda args: print("gankit sample: not built yet") or 1)
