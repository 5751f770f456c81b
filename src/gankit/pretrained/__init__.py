"""Pretrained generators that ship inside the package (`gankit sample --pretrained default`).

`store` finds, verifies (sha256) and loads them; `build` makes one from a run folder
(`gankit pretrained build RUN --name NAME`); `source` gives the CLI one loader for "a run
folder or a pretrained model".
"""
from gankit.pretrained.store import (PACKAGE_DIR, PretrainedError, available, load_pretrained,
                                     manifest_of)

__all__ = ["PACKAGE_DIR", "PretrainedError", "available", "load_pretrained", "manifest_of"]
