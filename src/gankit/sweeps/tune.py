"""Hyperparameter search with Optuna: minimise validation FID over a space of overrides.

A tune file (YAML):

    preset: seed004-dcgan
    set: {epochs: 5, eval.every: 1, eval.n: 2000}     # every trial; eval.every must be > 0
    space:
      optim.g_lr: {low: 1.0e-5, high: 1.0e-3, log: true}
      optim.d_lr: {low: 1.0e-5, high: 1.0e-3, log: true}
      model.nz: {choices: [32, 64, 128]}
      batch_size: {low: 32, high: 256, step: 32}      # an int key: integers
    pruner: {startup_trials: 5, warmup_epochs: 1}     # or `pruner: none`
    trials: 20                                        # default for --trials

A preset name instead of a file tunes DEFAULT_SPACE (both learning rates) with
eval.every = 1.

Storage: an Optuna storage URL. The default, sqlite:///DIR/optuna.db, lets several
processes on one machine share a study (`gankit tune ... --n-jobs 4`, or the same command in
several terminals). Workers on several machines share a study through a server database:
start `gankit tune FILE --storage postgresql://USER:PASS@HOST/DB --study NAME` on each
(PostgreSQL needs the `psycopg2` package; MySQL URLs work the same way with a driver).
Every process joins the study (load_if_exists) and the study stops at --trials finished
(complete or pruned) trials in total, whoever ran them.

Pruning: each evaluation's validation FID is reported to the trial (step = epoch) and a
MedianPruner stops trials that are worse than the median of earlier trials at that epoch.
The stop takes effect at the next batch, after the epoch's record and checkpoint are saved,
so a pruned trial's folder is a coherent run that ended early. The objective is the FID of
the last evaluation (the final model, as in `gankit sweep`'s table).
"""
from __future__ import annotations

import difflib
import math
import os
import socket
import subprocess
import sys
import time
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from gankit.config import ConfigError, TrainConfig, preset_names, resolve
from gankit.sweeps.spec import check_key, check_top_keys, flatten, overrides_dict, yaml_value

TUNE_KEYS = ("preset", "description", "set", "space", "pruner", "trials", "sampler_seed")
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "optim.g_lr": {"low": 1e-5, "high": 1e-3, "log": True},
    "optim.d_lr": {"low": 1e-5, "high": 1e-3, "log": True},
}
# Finished trials count toward --trials; failed ones (e.g. a non-finite loss) do not.
COUNTED = ("RUNNING", "WAITING", "COMPLETE", "PRUNED")


@dataclass
class Param:
    """One dimension of the search space."""
    key: str
    kind: str                       # "float" | "int" | "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list[Any] = field(default_factory=list)

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            # Optuna keeps scalars only: lists (e.g. betas) are offered as their YAML text.
            if all(_scalar(c) for c in self.choices):
                return trial.suggest_categorical(self.key, self.choices)
            text = trial.suggest_categorical(self.key, [yaml_value(c) for c in self.choices])
            return yaml.safe_load(text)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high),
                                   step=self.step, log=self.log)

    def corners(self) -> list[Any]:
        """Values that check the key and its types before anything runs."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


@dataclass
class TuneSpec:
    name: str                       # default study name
    preset: str
    common: dict[str, Any]          # `set:`
    cli: dict[str, Any]             # command-line --set (applied last)
    space: list[Param]
    pruner: dict[str, int] | None   # None: no pruning
    trials: int | None
    sampler_seed: int | None
    description: str = ""

    def config(self, params: dict[str, Any]) -> TrainConfig:
        return resolve(self.preset, {**self.common, **params, **self.cli})

    def command(self, params: dict[str, Any]) -> str:
        """The `gankit train` command that trains a trial's config again."""
        over = {**self.common, **params, **self.cli}
        sets = " ".join(f"--set {k}={_shell(yaml_value(v))}" for k, v in over.items())
        return f"gankit train --preset {self.preset} {sets}".strip()


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _shell(text: str) -> str:
    import shlex
    return shlex.quote(text)


# ---- reading the tune file -------------------------------------------------------------

def load_tune(name_or_path: str | Path, extra: Iterable[str] | dict[str, Any] = ()
              ) -> TuneSpec:
    """A tune file, or a preset name (DEFAULT_SPACE, eval every epoch); checked in full."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"tune file {path}: not valid YAML ({e})") from None
        return parse_tune(data, path.stem, str(path), extra)
    name = str(name_or_path)
    if name in preset_names():
        return parse_tune({"preset": name, "set": {"eval.every": 1},
                           "space": DEFAULT_SPACE}, name, f"preset {name}", extra)
    near = difflib.get_close_matches(name, preset_names(), n=3, cutoff=0.4)
    hint = f" Presets with a close name: {', '.join(near)}." if near else ""
    raise ConfigError(f"{name!r} is neither a tune file nor a preset.{hint}")


def parse_tune(data: Any, name: str = "tune", source: str = "<dict>",
               extra: Iterable[str] | dict[str, Any] = ()) -> TuneSpec:
    where = f"tune file {source}"
    check_top_keys(data, TUNE_KEYS, where, "preset:, set: and space:")
    preset = data.get("preset", "default")
    common = flatten(data.get("set") or {}, f"{where}, set:", allow_preset=False)
    cli = overrides_dict(extra, "--set")
    space = parse_space(data.get("space"), where)
    both = [p.key for p in space if p.key in common or p.key in cli]
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} is searched (space:) and also fixed "
                          "(set: or --set); keep one")
    pruner = parse_pruner(data.get("pruner", {}), where)
    trials = data.get("trials")
    if trials is not None and (not isinstance(trials, int) or trials < 1):
        raise ConfigError(f"{where}: trials: expected a positive integer, got {trials!r}")
    seed = data.get("sampler_seed")
    spec = TuneSpec(name=name, preset=preset, common=common, cli=cli, space=space,
                    pruner=pruner, trials=trials, sampler_seed=seed,
                    description=str(data.get("description") or ""))
    check_spec(spec, where)
    return spec


def key_type(dotted: str) -> Any:
    """The type hint of a dotted config key, Optional removed (int, float, str, list...)."""
    tp: Any = TrainConfig
    for part in dotted.split("."):
        tp = typing.get_type_hints(tp)[part]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def parse_space(space: Any, where: str) -> list[Param]:
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: space: is empty; give config keys to search, e.g. "
                          "space: {optim.g_lr: {low: 1.0e-5, high: 1.0e-3, log: true}}")
    params = []
    for key, spec in space.items():
        if key == "preset":
            raise ConfigError(f"{where}: space: preset cannot be searched; one study, one preset")
        check_key(str(key), f"{where}: space:")
        at = f"{where}: space: {key}:"
        if not isinstance(spec, dict):
            raise ConfigError(f"{at} expected {{low, high[, log, step]}} or {{choices: [...]}}, "
                              f"got {spec!r}")
        unknown = set(spec) - {"low", "high", "log", "step", "choices"}
        if unknown:
            raise ConfigError(f"{at} unknown field(s) {', '.join(map(str, unknown))} "
                              "(use low, high, log, step or choices)")
        if "choices" in spec:
            choices = spec["choices"]
            if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
                raise ConfigError(f"{at} choices: expected a non-empty list (and nothing else)")
            params.append(Param(str(key), "choice", choices=choices))
            continue
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{at} give both low and high (or choices: [...])")
        tp = key_type(str(key))
        if tp not in (int, float):
            raise ConfigError(f"{at} {key} is not a number; search it with choices: [...]")
        try:
            low, high = float(spec["low"]), float(spec["high"])
            step = None if spec.get("step") is None else float(spec["step"])
        except (TypeError, ValueError):
            raise ConfigError(f"{at} low/high/step must be numbers") from None
        log = bool(spec.get("log", False))
        if not low < high:
            raise ConfigError(f"{at} low ({low:g}) must be below high ({high:g})")
        if log and low <= 0:
            raise ConfigError(f"{at} log: true needs low > 0")
        if log and step is not None and tp is float:
            raise ConfigError(f"{at} log and step cannot be combined for a float")
        if tp is int:
            if not (low.is_integer() and high.is_integer()):
                raise ConfigError(f"{at} {key} is an integer key: low and high must be integers")
            params.append(Param(str(key), "int", int(low), int(high), log,
                                None if step is None else int(step)))
        else:
            params.append(Param(str(key), "float", low, high, log, step))
    return params


def parse_pruner(spec: Any, where: str) -> dict[str, int] | None:
    if spec in (None, "none", False):
        return None
    if spec == "median":
        spec = {}
    if not isinstance(spec, dict) or set(spec) - {"startup_trials", "warmup_epochs"}:
        raise ConfigError(f"{where}: pruner: expected none, median or "
                          "{startup_trials: N, warmup_epochs: E}")
    return {"startup_trials": int(spec.get("startup_trials", 5)),
            "warmup_epochs": int(spec.get("warmup_epochs", 1))}


def check_spec(spec: TuneSpec, where: str) -> None:
    """Resolve the corners of the space: a bad key or value fails here, before any trial."""
    base = spec.config({})
    if base.eval.every <= 0:
        raise ConfigError(f"{where}: tuning minimises validation FID, so it needs eval.every "
                          "> 0 (e.g. set: {eval.every: 1} in the tune file, or --set "
                          "eval.every=1)")
    configs = [(where, base)]
    for p in spec.space:
        for value in p.corners():
            try:
                configs.append((f"{where}: space: {p.key}={yaml_value(value)}",
                                spec.config({p.key: value})))
            except ConfigError as e:
                raise ConfigError(f"{where}: space: {p.key}: {e}") from None
    from gankit.sweeps.runner import preflight
    preflight(configs)


# ---- storage and study ------------------------------------------------------------------

def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'optuna.db').resolve()}"


def _redact(url: str) -> str:
    import re
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
    raise ConfigError(f"cannot open the Optuna storage {_redact(url)} ({type(e).__name__}: "
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


# ---- the objective ------------------------------------------------------------------------

class SurplusTrial(Exception):
    """Another process reached --trials first: this trial is not needed."""


def make_trainer_class() -> type:
    from gankit.training.loop import Trainer

    class PruningTrainer(Trainer):
        """A Trainer that reports every evaluation's FID to an Optuna trial."""

        def __init__(self, cfg: TrainConfig, run_dir: Path, trial: Any) -> None:
            super().__init__(cfg, run_dir, progress=False)
            self.trial = trial
            self.prune_at: int | None = None
            self.hooks.append(PruningTrainer._check)

        def evaluate(self) -> dict[str, float]:
            res = super().evaluate()
            fid = res.get(f"{self.cfg.eval.split}/fid")
            if fid is not None and math.isfinite(fid):
                epoch = self.epoch + 1      # the epoch being finished
                self.trial.report(fid, step=epoch)
                if self.trial.should_prune():
                    self.prune_at = epoch
            return res

        @staticmethod
        def _check(trainer: "PruningTrainer", epoch: int, batch: int) -> None:
            # first batch after a pruned evaluation: its record and checkpoint are written
            if trainer.prune_at is not None:
                import optuna
                raise optuna.TrialPruned(f"validation FID at epoch {trainer.prune_at} is "
                                         "worse than the median of earlier trials")

    return PruningTrainer


@dataclass
class Objective:
    spec: TuneSpec
    trials_dir: Path
    total: int
    echo: Any = None

    def __call__(self, trial: Any) -> float:
        import optuna
        from gankit.sweeps.summary import last_record
        if counted(trial.study, before=trial.number) >= self.total:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"the study already has {self.total} trials")
        params = {p.key: p.suggest(trial) for p in self.spec.space}
        cfg = self.spec.config(params)
        run_dir = self.trials_dir / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("params_yaml", {k: yaml_value(v) for k, v in params.items()})
        self._echo(f"trial {trial.number}: " + ", ".join(f"{k}={yaml_value(v)}"
                                                         for k, v in params.items()))
        trainer = make_trainer_class()(cfg, run_dir, trial)
        try:
            trainer.run()
        except optuna.TrialPruned:
            self._echo(f"trial {trial.number}: pruned at epoch {trainer.prune_at}")
            raise
        key = f"{cfg.eval.split}/fid"
        fid = last_record(run_dir).get(key)
        if fid is None or not math.isfinite(fid):
            # Optuna records a NaN objective as a failed trial and goes on with the next
            self._echo(f"trial {trial.number}: no finite {key} in {run_dir}/metrics.jsonl")
            return math.nan
        self._echo(f"trial {trial.number}: {key} {fid:.4g}")
        return float(fid)

    def _echo(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text)


# ---- running --------------------------------------------------------------------------------

@dataclass
class TuneResult:
    study: Any
    out: Path
    table: str


def tune(spec: TuneSpec, trials: int, out: str | Path | None = None, storage: str | None = None,
         study_name: str | None = None, n_jobs: int = 1,
         echo: Any = lambda s: print(s, file=sys.stderr, flush=True),
         worker_args: list[str] | None = None) -> TuneResult:
    """Run trials until the study holds `trials` finished ones (all processes together).

    n_jobs > 1 starts that many worker processes of `gankit tune` on this machine (each with
    cores // n_jobs threads), all joining the same study; `worker_args` is the command line
    they get (the CLI passes its own).
    """
    import optuna
    from gankit.training.loop import NonFiniteLoss
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    study_name = study_name or spec.name
    out = Path(out) if out is not None else Path("tune")
    url = storage or default_storage(out)
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    store = open_storage(url)                          # errors before anything runs
    trials_dir = out / study_name
    existed = study_name in optuna.study.get_all_study_names(store)
    if not existed and trials_dir.is_dir() and any(trials_dir.glob("trial-*")):
        raise ConfigError(f"{trials_dir} holds trials of an earlier study named {study_name!r} "
                          f"that {_redact(url)} does not know; choose another --study or --out")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(spec, store, study_name)
    trials_dir.mkdir(parents=True, exist_ok=True)
    if n_jobs > 1:
        _run_workers(n_jobs, worker_args or [], echo)
    else:
        done = counted(study)
        if done >= trials:
            echo(f"study {study_name} already has {done} trials (--trials {trials})")
        else:
            echo(f"study {study_name} in {_redact(url)}: {done} trials so far, running to "
                 f"{trials}; trial folders in {trials_dir}")

            def stop_when_full(study: Any, trial: Any) -> None:
                if counted(study) >= trials:
                    study.stop()

            objective = Objective(spec, trials_dir, trials, echo)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
                study.optimize(objective, n_trials=None, callbacks=[stop_when_full],
                               catch=(NonFiniteLoss, SurplusTrial))
    table = trials_table(study)
    (trials_dir / "trials.csv").write_text(trials_csv(study))
    return TuneResult(study, trials_dir, table)


def _run_workers(n: int, args: list[str], echo: Any) -> None:
    from gankit.sweeps.runner import cpu_count
    threads = max(1, cpu_count() // n)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "GANKIT_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "gankit.cli.main", "tune", *args, "--n-jobs", "1", "--worker"]
    echo(f"starting {n} worker processes ({threads} threads each)")
    procs = [subprocess.Popen(cmd, env=env) for _ in range(n)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    bad = [c for c in codes if c != 0]
    if bad:
        raise ConfigError(f"{len(bad)} of {n} tune workers failed (exit codes {bad})")


def trials_table(study: Any) -> str:
    """Markdown: every trial, best first, then the best trial's config as a command."""
    import optuna
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    keys: list[str] = []
    for t in trials:
        keys += [k for k in t.params if k not in keys]
    def order(t: Any) -> tuple:
        return (t.state != optuna.trial.TrialState.COMPLETE,
                t.value if t.value is not None else math.inf, t.number)
    head = ["trial", "state", "val/fid", "epochs", *keys]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if h == "state" else "---:" for h in head) + "|"]
    for t in sorted(trials, key=order):
        value = t.value if t.value is not None else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        epochs = max(t.intermediate_values) if t.intermediate_values else ""
        cells = [str(t.number), t.state.name.lower(),
                 "" if value is None else f"{value:.4g}", str(epochs),
                 *(_fmt(t.params.get(k)) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def trials_csv(study: Any) -> str:
    import csv
    import io
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    keys: list[str] = []
    for t in trials:
        keys += [k for k in t.params if k not in keys]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "state", "value", *keys, "run_dir"])
    for t in trials:
        w.writerow([t.number, t.state.name.lower(), "" if t.value is None else t.value,
                    *(t.params.get(k, "") for k in keys), t.user_attrs.get("run_dir", "")])
    return buf.getvalue()


def best_summary(spec: TuneSpec, study: Any) -> str:
    """The best trial and a `gankit train` command that trains its config again."""
    import optuna
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return "no trial has completed yet"
    best = min(done, key=lambda t: t.value)
    params = {k: yaml.safe_load(v) for k, v in best.user_attrs.get("params_yaml", {}).items()} \
        or best.params
    return (f"best: trial {best.number}, val/fid {best.value:.4g} "
            f"({best.user_attrs.get('run_dir', '')})\n  {spec.command(params)}")


__all__ = ["DEFAULT_SPACE", "Param", "TuneResult", "TuneSpec", "best_summary", "load_tune",
           "open_storage", "parse_tune", "tune"]
