"""The real MNIST: checksums after a fetch (shared cache), splits, and the warm-cache fetch
command, which must not import PyTorch."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import torch

from gankit.data import load_arrays, load_dataset
from gankit.data.idx import read_bytes
from gankit.data.mnist import MNIST, MNIST_SHA256
from gankit.data.sources import ensure_files


def test_real_files_have_the_official_sha256(mnist_cache):
    files = ensure_files(MNIST)
    for name, path in files.items():
        assert hashlib.sha256(read_bytes(path)).hexdigest() == MNIST_SHA256[name], path


def test_splits_of_report_000(mnist_cache):
    sizes = {s: len(load_arrays("mnist", s).images) for s in ("train", "val", "test", "train-full")}
    assert sizes == {"train": 50_000, "val": 10_000, "test": 10_000, "train-full": 60_000}
    val, full = load_arrays("mnist", "val"), load_arrays("mnist", "train-full")
    np.testing.assert_array_equal(val.images, full.images[50_000:])  # val = last 10k of train
    np.testing.assert_array_equal(val.labels, full.labels[50_000:])


def test_load_dataset_contract(mnist_cache):
    ds = load_dataset("mnist", "test", limit=100)
    assert ds.images.dtype == torch.uint8
    assert tuple(ds.images.shape) == (100, 1, 28, 28) and ds.shape == (1, 28, 28)
    assert ds.labels.dtype == torch.int64 and ds.num_classes == 10
    assert ds.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the first test digits, as published
    assert int(ds.images.max()) == 255 and int(ds.images.min()) == 0


def test_warm_fetch_reads_the_cache_without_torch(mnist_cache):
    code = ("import sys; from gankit.cli.main import main; rc = main(['data', 'fetch', 'mnist']);"
            "assert 'torch' not in sys.modules, 'fetch imported torch'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "GANKIT_CACHE": str(mnist_cache)})
    assert r.returncode == 0, r.stderr
    assert "mnist train-full: 60000 images of shape (1, 28, 28)" in r.stdout
    assert "mnist test: 10000 images" in r.stdout
    assert "looking in the cache" in r.stderr and "mirror" not in r.stderr


def test_cli_reports_data_errors_in_one_line(tmp_path, capsys):
    from gankit.cli.main import main
    assert main(["data", "fetch", "mnist", "--data-dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "gankit: error: data folder" in err and "Traceback" not in err
