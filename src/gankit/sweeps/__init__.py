"""Sweeps and tuning: many runs of one preset, compared in one table.

- `spec`: sweep files (a base preset, `set:`, `grid:` or `points:`, `seeds:`), resolved to
  one TrainConfig per run before anything runs; shipped files in `sweeps/files/`.
- `preflight`: the checks of every config before anything runs.
- `runner`: runs a sweep, `jobs` worker processes (`worker`, `processes`) at a time,
  skipping finished runs and resuming unfinished ones; `state`: DIR/state.json.
- `seeds`: `gankit train --seeds` in several worker processes at once (an ensemble per core).
- `summary`: the sweep's comparison table; `tables`: the Markdown/CSV writer of every table.
- `tune_file`, `study`, `objective`, `tune`: Optuna search of a space of overrides,
  minimising validation FID, with pruning; `study` also opens any database (--storage) and
  holds what happens to a trial whose worker dies (failed, retried once).
- `shared`: a sweep's points as trials of a study, claimed by workers on several machines.
"""
from gankit.sweeps.runner import SweepResult, plan, prepare, run_sweep
from gankit.sweeps.spec import Run, Sweep, load_sweep, parse_sweep, shipped_names
from gankit.sweeps.summary import write_summary

__all__ = ["Run", "Sweep", "SweepResult", "load_sweep", "parse_sweep", "plan", "prepare",
           "run_sweep", "shipped_names", "write_summary"]
