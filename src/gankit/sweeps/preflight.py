"""Checks of every config of a sweep or study before anything runs: `validate` of the
training layer on each distinct config, with the run's name in front of the first error."""
from __future__ import annotations

from typing import Iterable

from gankit.config import ConfigError, TrainConfig, config_key
from gankit.data import DataError
from gankit.training.validate import validate


def preflight(runs: Iterable[tuple[str, TrainConfig]]) -> None:
    """`validate(cfg)` for every distinct config (seeds aside), before any job starts; loading
    the data here also fetches it once, not once per job. Raises ConfigError (or DataError)
    naming the run."""
    seen: set[str] = set()
    for name, cfg in runs:
        key = config_key(cfg, ignore=("seed",))
        if key in seen:
            continue
        seen.add(key)
        try:
            validate(cfg)
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None
        except DataError as e:
            raise DataError(f"{name}: {e}") from None
