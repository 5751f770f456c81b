"""Checks of every config of a sweep or study before anything runs.

`preflight` is the one call site: when the training layer's `validate(cfg)` lands, its body
becomes a loop over `validate`.
"""
from __future__ import annotations

import json
from typing import Iterable

import torch

from gankit.config import ConfigError, TrainConfig, to_dict
from gankit.data import load_arrays, qualified_name
from gankit.losses import get_loss
from gankit.models import build_models


def preflight(runs: Iterable[tuple[str, TrainConfig]]) -> None:
    """What resolving a config cannot see, checked before anything runs: every dataset loads
    (and has labels when the model is conditional), every model builds for its data (on
    PyTorch's meta device: no memory, no compute) and every loss exists. Each distinct
    dataset and model is checked once; loading the data here also fetches it once, not once
    per job. Raises ConfigError (or DataError) naming the run."""
    datasets: dict[tuple, tuple[tuple[int, int, int], int]] = {}
    built: set[str] = set()
    for name, cfg in runs:
        d = cfg.data
        key = (qualified_name(d.name, d.classes), d.data_dir)
        if key not in datasets:
            arrays = load_arrays(key[0], "val", d.data_dir)
            classes = 0 if arrays.labels is None else len(arrays.classes)
            datasets[key] = (tuple(arrays.images.shape[1:]), classes)
        shape, classes = datasets[key]
        try:
            get_loss(cfg.loss)
            model_key = json.dumps([to_dict(cfg.model), shape, classes], sort_keys=True)
            if model_key in built:
                continue
            built.add(model_key)
            try:
                with torch.device("meta"):
                    build_models(cfg.model, shape, classes)
            except ConfigError:
                raise
            except Exception:  # noqa: BLE001 - the meta device's limits, not the config's
                pass
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None
