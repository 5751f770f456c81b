"""`gankit report` (being built)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="(being built)")
    p.set_defaults(func=lambda args: print("gankit report: not built yet") or 1)
