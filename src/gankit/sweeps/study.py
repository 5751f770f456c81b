"""The Optuna side of `gankit tune`: opening the storage and the study, counting trials.

Storage: an Optuna storage URL. The default, sqlite:///DIR/optuna.db, lets several
processes on one machine share a study. Workers on several machines share a study through a
server database (`--storage postgresql://USER:PASS@HOST/DB --study NAME` on each; PostgreSQL
needs the `psycopg2` package). Every process joins the study (load_if_exists) and the study
stops at --trials finished (complete or pruned) trials in total, whoever ran them.
Optuna is an optional extra: it is imported inside the functions.
"""
from __future__ import annotations

import re
import time
import typing
import warnings
from pathlib import Path
from typing import Any

from gankit.config import ConfigError
from gankit.sweeps.tune_file import TuneSpec

# Finished trials count toward --trials; failed ones (e.g. a non-finite loss) do not.
COUNTED = ("RUNNING", "WAITING", "COMPLETE", "PRUNED")


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'optuna.db').resolve()}"


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_storage(url: str) -> Any:
    """An Optuna RDB storage, or a ConfigError saying why the URL cannot be opened."""
    import optuna
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        # several processes write one file: wait for the lock instead of failing at once
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
        path = url.split("sqlite:///", 1)[-1]
        if path and path != url and not Path(path).parent.is_dir():
            raise ConfigError(f"storage {url}: the folder {Path(path).parent} does not exist")
    import sqlalchemy.exc
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeat is "experimental" in some versions
                return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180,
                                                  **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as e:
            # Several processes creating one new database race to create its tables: the
            # losers see an integrity error (or SQLite's lock), and find the tables on a retry.
            race = isinstance(e, sqlalchemy.exc.IntegrityError) or url.startswith("sqlite:")
            if attempt == 5 or not race:
                _storage_error(url, e)
            time.sleep(0.5 + attempt)
        except Exception as e:  # noqa: BLE001 - bad URL, missing driver, unreachable server
            _storage_error(url, e)
    raise AssertionError("unreachable")


def _storage_error(url: str, e: Exception) -> typing.NoReturn:
    msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
    raise ConfigError(f"cannot open the Optuna storage {redact(url)} ({type(e).__name__}: "
                      f"{msg}). Give a URL such as sqlite:///tune/optuna.db or "
                      "postgresql://USER:PASS@HOST/DB (needs the psycopg2 package).") from None


def open_study(spec: TuneSpec, storage: Any, study_name: str) -> Any:
    import optuna
    sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed)
    pruner = (optuna.pruners.NopPruner() if spec.pruner is None else
              optuna.pruners.MedianPruner(n_startup_trials=spec.pruner["startup_trials"],
                                          n_warmup_steps=spec.pruner["warmup_epochs"]))
    last: Exception | None = None
    for _ in range(5):  # two processes creating one study at once: the loser loads it
        try:
            return optuna.create_study(storage=storage, study_name=study_name,
                                       direction="minimize", sampler=sampler, pruner=pruner,
                                       load_if_exists=True)
        except Exception as e:  # noqa: BLE001
            last = e
            time.sleep(0.5)
    raise ConfigError(f"cannot create or load study {study_name!r}: {last}")


def counted(study: Any, before: int | None = None) -> int:
    """Trials that count toward the budget (optionally only those numbered below `before`)."""
    import optuna
    states = tuple(getattr(optuna.trial.TrialState, s) for s in COUNTED)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states)
               if before is None or t.number < before)
