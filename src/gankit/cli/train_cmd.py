"""`gankit train`: train a preset by name, or continue a run.

Both paths resolve the config, apply `--set` and `--device` as ordinary overrides through
`gankit.config.keys`, and run `validate` before any work, so a bad setting is one line
before the first batch (errors reach the user through cli/main.py).
The training modules are imported inside the functions: building the parser imports every
subcommand's module, and `gankit data fetch` must not pay for PyTorch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.args import count
from gankit.config import TrainConfig, resolve
from gankit.config.keys import apply, parse_override
from gankit.errors import UserError


def overrides(args: argparse.Namespace) -> list[str]:
    """`--set` strings plus `--device` as the override it is."""
    return [*args.set, *([f"device={args.device}"] if args.device else [])]


def resume_config(run: str, sets: list[str]) -> TrainConfig:
    """The run's config with the overrides `--resume` accepts (RESUMABLE_KEYS: epochs, device,
    evaluation and sampling settings); a key that would change the model is refused."""
    from gankit.training.checkpoint import RESUMABLE_KEYS
    from gankit.training.runs import read_config
    cfg = read_config(run)
    for text in sets:
        key, _ = parse_override(text)
        if key.split(".")[0] not in RESUMABLE_KEYS:
            raise UserError(f"--resume continues the run's own config; {key} cannot change "
                            f"mid-run (only {', '.join(sorted(RESUMABLE_KEYS))} can). Start a "
                            "new run with --preset/--set instead")
    return apply(cfg, sets)


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2,3` (or a range, `0-7`) as a list of distinct integers."""
    seeds: list[int] = []
    for part in text.split(","):
        a, sep, b = part.strip().partition("-")
        if not (a.isdigit() and (not sep or b.isdigit())):
            raise UserError(f"--seeds {text!r}: give seeds as a list or a range of integers, "
                            "e.g. --seeds 0,1,2,3 or --seeds 0-7")
        if sep and int(b) < int(a):
            raise UserError(f"--seeds {text!r}: the range {part.strip()} runs backwards; give "
                            f"it low to high, e.g. --seeds {b}-{a}")
        seeds += range(int(a), int(b or a) + 1)
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r} repeats a seed")
    return seeds


def ensemble_folder(path: str) -> bool:
    """True for a folder of `--seeds` members (seedNNN/ runs) that is not a run itself."""
    from gankit.training.ensemble import members_of
    return not (Path(path) / "config.yaml").is_file() and bool(members_of(path))


def run_seeds(args: argparse.Namespace) -> int:
    """`--seeds`: K runs of one config, in one process (an ensemble for the MLP family) or
    several at once (sweeps/seeds.py: on a CPU by default one per core), or `--resume` of
    them."""
    import dataclasses

    from gankit.sweeps.seeds import processes_for, train_in_processes
    from gankit.training.ensemble import (member_dir, members_of, resume_seeds, train_group,
                                          unfinished)
    from gankit.training.loop import check_new_folder
    from gankit.training.runs import next_run_dir
    from gankit.training.validate import validate
    if args.resume:
        dirs = members_of(args.resume)
        cfgs = [resume_config(str(d), overrides(args)) for d in dirs]
        for cfg in cfgs:
            validate(cfg, warn=False)
        out, jobs = Path(args.resume), list(zip(cfgs, dirs))
    else:
        seeds = parse_seeds(args.seeds)
        cfg = resolve(args.preset or "default", overrides(args))
        validate(cfg)
        out = Path(args.out) if args.out else next_run_dir(args.runs, cfg.preset)
        jobs = [(dataclasses.replace(cfg, seed=s), member_dir(out, s)) for s in seeds]
        for _, path in jobs:
            check_new_folder(path)
    # no worker processes for runs that have all trained (train_group says so)
    processes = processes_for(jobs[0][0], len(jobs), args.jobs) if unfinished(jobs) else 1
    if processes > 1:
        outs = train_in_processes(jobs, processes, out, quiet=args.quiet)
    elif args.resume:
        outs = resume_seeds(args.resume, cfgs or None, progress=not args.quiet)
    else:
        outs = train_group(jobs, progress=not args.quiet)  # folders checked new above
    print("\n".join(map(str, outs)))
    return 0


def worker_argv(args: argparse.Namespace, out: Path | str) -> list[str]:
    """The `gankit ...` arguments each process of `--nproc N` runs: this command without
    --nproc, with the run folder fixed (every process trains the same run)."""
    argv = ["--quiet"] if getattr(args, "quiet_messages", False) else []
    argv += ["train", *(["--quiet"] if args.quiet else [])]
    for text in overrides(args):
        argv += ["--set", text]
    if args.resume:
        return argv + ["--resume", str(args.resume), "--from", args.which]
    return argv + ["--preset", args.preset or "default", "--out", str(out)]


def run(args: argparse.Namespace) -> int:
    if args.name:  # `gankit train dcgan-r004`: the preset named without --preset
        if args.preset and args.preset != args.name:
            raise UserError(f"two presets named: {args.name} and --preset {args.preset}; "
                            "give one")
        args.preset = args.name
    if args.resume:
        if args.preset or args.out:
            raise UserError("--resume continues the run in its own folder with its own preset; "
                            "drop --preset/--out")
        if args.seeds:
            raise UserError("--seeds starts an ensemble; --resume DIR continues one with the "
                            "seeds it has: drop --seeds")
    if args.jobs is not None and not (args.seeds or (args.resume and
                                                     ensemble_folder(args.resume))):
        raise UserError("--jobs shares the runs of --seeds among processes; add --seeds (or "
                        "--resume an ensemble folder)")
    if args.seeds or (args.resume and ensemble_folder(args.resume)):
        if args.nproc > 1:
            raise UserError("--seeds trains its runs side by side (as ensembles, in one process "
                            "or --jobs); --nproc splits one run over processes: use one of them")
        if args.which != "last":
            raise UserError("--from applies to one run; an ensemble resumes from each "
                            "member's last checkpoint")
        return run_seeds(args)
    if args.resume:
        cfg = resume_config(args.resume, overrides(args))
    else:
        cfg = resolve(args.preset or "default", overrides(args))  # before the heavy imports
    from gankit.training import distributed
    from gankit.training.loop import check_new_folder, resume, train
    from gankit.training.runs import next_run_dir
    from gankit.training.validate import validate
    world_size = args.nproc if args.nproc > 1 else None  # None: torchrun's, else 1
    if args.resume:
        validate(cfg, warn=False, world_size=world_size)  # its warnings were shown at the start
        if args.nproc > 1:  # rank 0 prints the folder
            return distributed.launch(args.nproc, worker_argv(args, args.resume), args.resume)
        out = resume(args.resume, progress=not args.quiet, cfg=cfg, which=args.which)
    else:
        if args.which != "last":
            raise UserError("--from chooses the checkpoint of --resume RUN; add --resume RUN")
        out = Path(args.out) if args.out else next_run_dir(args.runs, cfg.preset)
        check_new_folder(out)
        # With --nproc the processes' rank 0 shows the warnings (and prints the folder).
        validate(cfg, world_size=world_size, warn=args.nproc == 1 and distributed.is_main())
        if args.nproc > 1:
            return distributed.launch(args.nproc, worker_argv(args, out), str(out))
        out = train(cfg, out, progress=not args.quiet)
    if distributed.is_main():
        print(out)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a preset (default: the `default` preset)",
                       description="Train a GAN from a named preset; `gankit presets` lists them.")
    p.add_argument("name", nargs="?", metavar="PRESET",
                   help="preset name, as --preset gives it (default: default)")
    p.add_argument("--preset", help="preset name (default: default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set epochs=3 --set optim.g_lr=1e-4; "
                        "with --resume only epochs, device, eval.*, sample_every, "
                        "checkpoint_every")
    p.add_argument("--out", help="run folder (default: runs/NNNNN-PRESET)")
    p.add_argument("--runs", default="runs", help="parent of numbered run folders (default runs)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN")
    p.add_argument("--from", dest="which", default="last", metavar="best|last|FILE",
                   help="with --resume: the checkpoint to continue from (default last; an "
                        "unreadable last.pt falls back to last.prev.pt, then best.pt)")
    p.add_argument("--seeds", metavar="S,S,...",
                   help="train the config once per seed (e.g. 0,1,2,3 or 0-7) into OUT/seedNNN, "
                        "side by side (on a CPU in one process per core, see --jobs; for the MLP "
                        "family as batched models); --resume OUT continues them")
    p.add_argument("--jobs", type=count, metavar="N",
                   help="with --seeds: train the seeds in N processes at once, each with its "
                        "share of them and cores/N threads (default on a CPU: one per core; "
                        "for families without a batched step only when the seeds divide "
                        "evenly; else 1)")
    p.add_argument("--device", help="cpu, cuda, cuda:N (the same as --set device=...)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--nproc", type=count, default=1, metavar="N",
                   help="train on N processes of this machine with DistributedDataParallel "
                        "(starts torchrun; batch_size stays the global batch; "
                        "docs/distributed.md)")
    p.set_defaults(func=run)
