"""The Optuna side of `gankit tune` and of shared sweeps: the storage, the study, its trials.

Storage: any SQLAlchemy URL that Optuna's RDB storage takes. The default,
sqlite:///DIR/optuna.db, lets several processes on one machine share a study. Workers on
several machines share one through a server database (`--storage
postgresql://USER:PASS@HOST/DB`; the driver comes with `pip install 'gankit[postgres]'`).
Every process joins the study (load_if_exists).

Failures (docs/distributed.md): every running trial beats a heartbeat into the database
every HEARTBEAT_S seconds. A trial whose worker died (SIGKILL, a lost machine) stops beating;
the next worker that looks at the study after GRACE_S seconds marks it FAILED and enqueues
one retry with the same parameters (Optuna's RetryHeartbeatStaleTrialCallback, max_retry=1).
A trial whose worker is stopped by a signal (Ctrl-C) is failed and retried the same way at
once (`run_one`). Optuna is an optional extra: it is imported inside the functions.
"""
from __future__ import annotations

import importlib.util
import re
import time
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.config import ConfigError

# Trials that count toward the study's total; failed ones (e.g. a non-finite loss) do not.
COUNTED = ("RUNNING", "WAITING", "COMPLETE", "PRUNED")
HEARTBEAT_S = 60        # a running trial writes its heartbeat this often
GRACE_S = 180           # a trial without a heartbeat for this long is failed and retried
POLL_S = 5              # a waiting worker looks at the study this often
MAX_RETRY = 1           # a trial killed again after its retry stays failed


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'optuna.db').resolve()}"


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def check_url(url: str) -> tuple[str, dict[str, Any]]:
    """(url, engine arguments); a ConfigError for a malformed URL or a missing driver.

    A bare postgresql:// URL gets the psycopg2 driver (the `postgres` extra) unless only
    psycopg 3 is installed: SQLAlchemy's own default changed from one to the other in 2.1.
    """
    import sqlalchemy.engine
    import sqlalchemy.exc
    try:
        parsed = sqlalchemy.engine.make_url(url)
        if parsed.drivername == "postgresql":
            only_v3 = (importlib.util.find_spec("psycopg2") is None
                       and importlib.util.find_spec("psycopg") is not None)
            parsed = parsed.set(drivername="postgresql+psycopg" if only_v3
                                else "postgresql+psycopg2")
        dialect = parsed.get_dialect()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as e:
        raise ConfigError(f"--storage {redact(url)} is not a database URL Optuna can use "
                          f"({_first_line(e)}); give e.g. sqlite:///tune/optuna.db or "
                          "postgresql://USER:PASS@HOST/DB") from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        if parsed.get_driver_name() == "psycopg2":
            fix = "pip install 'gankit[postgres]'"
        else:
            fix = (f"install the Python driver of {parsed.drivername} (for PostgreSQL: pip "
                   "install 'gankit[postgres]' and a postgresql:// URL)")
        raise ConfigError(f"--storage {redact(url)}: the database driver is not installed "
                          f"({_first_line(e)}); {fix}") from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        # several processes write one file: wait for the lock instead of failing at once
        kwargs["connect_args"] = {"timeout": 120}
        if parsed.database and parsed.database != ":memory:" and \
                not Path(parsed.database).parent.is_dir():
            raise ConfigError(f"storage {url}: the folder {Path(parsed.database).parent} "
                              "does not exist")
    elif parsed.get_driver_name() == "psycopg2":
        kwargs["connect_args"] = {"connect_timeout": 10}   # an unreachable host: 10 s, not 2 min
    # a server may drop idle connections between two trials of hours: test them before use
    kwargs["pool_pre_ping"] = True
    return parsed.render_as_string(hide_password=False), kwargs


def open_storage(url: str, heartbeat: int = HEARTBEAT_S, grace: int = GRACE_S) -> Any:
    """An Optuna RDB storage with heartbeats (stale trials are failed and retried once), or a
    ConfigError in one line saying why the URL cannot be opened."""
    import optuna
    import sqlalchemy.exc
    if heartbeat < 1 or grace <= heartbeat:
        raise ConfigError(f"--heartbeat ({heartbeat}) must be at least 1 s and --grace "
                          f"({grace}) longer than it")
    engine_url, engine_kwargs = check_url(url)
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback
    exc = sqlalchemy.exc
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeat is "experimental" in Optuna
                storage = optuna.storages.RDBStorage(
                    engine_url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=retry(max_retry=MAX_RETRY))
            if storage.engine.name == "sqlite":
                _lock_at_begin(storage.engine)
            return storage
        except (exc.IntegrityError, exc.OperationalError, exc.ProgrammingError) as e:
            # Several processes creating one new database race to create its tables: the
            # losers see an integrity error, PostgreSQL's "type ... already exists" (its
            # CREATE TYPE for Optuna's enums is not atomic with the check) or SQLite's lock,
            # and find the schema on a retry.
            race = (isinstance(e, exc.IntegrityError)
                    or (isinstance(e, exc.OperationalError) and url.startswith("sqlite:"))
                    or (isinstance(e, exc.ProgrammingError) and "already exists" in str(e)))
            if attempt == 5 or not race:
                _storage_error(url, e)
            time.sleep(0.5 + attempt)
        except Exception as e:  # noqa: BLE001 - an unreachable server, a refused login
            _storage_error(url, e)
    raise AssertionError("unreachable")


def _lock_at_begin(engine: Any) -> None:
    """Make every SQLite transaction of `engine` take the database's write lock when it
    begins (BEGIN IMMEDIATE), so that a read and the write that depends on it are one step.

    Python's sqlite3 module begins a transaction only at the first write: Optuna's claim of a
    waiting trial (read its state, then write RUNNING) read outside any transaction, and two
    workers could both read WAITING and both claim the same trial. The suite saw it as one
    point trained twice into one folder. PostgreSQL locks the row (SELECT ... FOR UPDATE).
    SQLAlchemy's recipe for pysqlite ("Serializable isolation / Savepoints / Transactional
    DDL"); the pooled connections Optuna opened before are dropped so that all get it."""
    import sqlalchemy

    def no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    sqlalchemy.event.listen(engine, "connect", no_implicit_begin)
    sqlalchemy.event.listen(engine, "begin",
                            lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    engine.dispose()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _storage_error(url: str, e: Exception) -> typing.NoReturn:
    raise ConfigError(f"cannot open the Optuna storage {redact(url)} ({type(e).__name__}: "
                      f"{_first_line(e)}). Check that the server is up and the URL right, "
                      "e.g. sqlite:///tune/optuna.db or postgresql://USER:PASS@HOST/DB.") \
        from None


def open_study(storage: Any, study_name: str, sampler: Any = None, pruner: Any = None) -> Any:
    """Create the study, or load it when another process has."""
    return join_study(storage, study_name, sampler, pruner)[0]


def join_study(storage: Any, study_name: str, sampler: Any = None, pruner: Any = None
               ) -> tuple[Any, bool]:
    """(the study, whether this call created it). The database holds one study of a name, so
    of several processes starting at once exactly one creates it; the others load it."""
    import optuna
    last: Exception | None = None
    for _ in range(5):  # a transient error (a lock, a dropped connection): try again
        try:
            try:
                return optuna.create_study(storage=storage, study_name=study_name,
                                           direction="minimize", sampler=sampler,
                                           pruner=pruner), True
            except optuna.exceptions.DuplicatedStudyError:
                return optuna.load_study(study_name=study_name, storage=storage,
                                         sampler=sampler, pruner=pruner), False
        except Exception as e:  # noqa: BLE001
            last = e
            time.sleep(0.5)
    raise ConfigError(f"cannot create or load study {study_name!r}: {last}")


def counted(study: Any, before: int | None = None) -> int:
    """Trials that count toward the total (optionally only those numbered below `before`)."""
    import optuna
    states = tuple(getattr(optuna.trial.TrialState, s) for s in COUNTED)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states)
               if before is None or t.number < before)


@dataclass
class Tally:
    """The study's trials by state (surplus and duplicate trials left out)."""
    finished: int       # complete or pruned
    running: int
    waiting: int        # enqueued: retries of stopped trials, points of a shared sweep
    failed: int


def tally(study: Any) -> Tally:
    """Fail the trials whose heartbeat stopped (retrying them), then count the rest."""
    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    n = {"COMPLETE": 0, "PRUNED": 0, "RUNNING": 0, "WAITING": 0, "FAIL": 0}
    for t in study.get_trials(deepcopy=False):
        if not (t.user_attrs.get("surplus") or t.user_attrs.get("duplicate")):
            n[t.state.name] = n.get(t.state.name, 0) + 1
    return Tally(n["COMPLETE"] + n["PRUNED"], n["RUNNING"], n["WAITING"], n["FAIL"])


def run_one(study: Any, storage: Any, objective: Any, catch: tuple[type[Exception], ...],
            echo: Any) -> None:
    """One trial of `objective` (which sets `objective.current` to its number), with the
    failure semantics of the module docstring: a trial stopped by a signal (or a bug) is
    failed and its retry enqueued at once; a trial that another worker failed because its
    heartbeat was late (shorter --grace than a pause of this worker) is dropped with a line."""
    import optuna
    objective.current = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=1, catch=catch)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as e:
        if objective.current is None or "Cannot tell a" not in str(e) and \
                not isinstance(e, optuna.exceptions.UpdateFinishedTrialError):
            raise
        echo(f"trial {objective.current}: another worker marked it failed (no heartbeat for "
             "--grace seconds) and retries it; this result is dropped: use a longer --grace")
    except BaseException:
        if objective.current is not None:
            trial = study.get_trials(deepcopy=True)[objective.current]
            if trial.state == optuna.trial.TrialState.FAIL:
                storage.get_heartbeat_stale_trial_callback()(study, trial)
        raise


def retry_of(trial: Any) -> int | None:
    """The number of the trial this one retries (None for a first try)."""
    return trial.system_attrs.get("failed_trial")


def wait_s(storage: Any) -> float:
    """How long a worker waits between two looks at trials running elsewhere: at most
    POLL_S, so it ends soon after the study does."""
    return float(min(storage.heartbeat_interval or HEARTBEAT_S, POLL_S))
