"""The distributed run's bookkeeping without processes: how a global batch is split over ranks,
the world torchrun describes, and the checks `validate` makes for a run on N processes."""
from __future__ import annotations

import copy

import pytest
import torch

from gankit.config import ConfigError
from gankit.data.datasets import load_dataset
from gankit.data.loader import BatchLoader, shard
from gankit.models import kernels
from gankit.training import distributed
from gankit.training.distributed import DistributedError, World, from_env, local_batch_size
from gankit.training.validate import validate
from tests.conftest import tiny


@pytest.mark.parametrize("n,parts", [(32, 2), (7, 2), (5, 4), (64, 8), (3, 3), (1, 1)])
def test_shards_cover_the_batch_in_order_evenly(n: int, parts: int) -> None:
    slices = [shard(10, 10 + n, r, parts) for r in range(parts)]
    assert slices[0][0] == 10 and slices[-1][1] == 10 + n
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))  # contiguous, in rank order
    sizes = [hi - lo for lo, hi in slices]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_ranks_together_read_exactly_the_single_process_batches() -> None:
    ds = load_dataset("digits", "train", limit=100)
    one = BatchLoader(ds, 32, seed=3, rotation=10)
    two = [BatchLoader(ds, 32, seed=3, rotation=10, part=(r, 2)) for r in range(2)]
    assert len(one) == len(two[0]) == 4  # 100 = 3 x 32 + 4: the last batch splits 2 + 2
    for e in range(2):
        for (x, y), (x0, y0), (x1, y1) in zip(one.epoch(e), two[0].epoch(e), two[1].epoch(e)):
            assert torch.equal(x, torch.cat([x0, x1])) and torch.equal(y, torch.cat([y0, y1]))
            assert len(x0) == len(x1)


def test_a_last_batch_smaller_than_the_world_is_dropped() -> None:
    ds = load_dataset("digits", "train", limit=67)  # 2 x 32 + 3 images
    assert len(BatchLoader(ds, 32)) == 3
    assert len(BatchLoader(ds, 32, part=(0, 2))) == 3      # 3 images: 2 + 1
    assert len(BatchLoader(ds, 32, part=(0, 4))) == 2      # 3 images for 4 ranks: dropped
    assert sum(len(x) for x, _ in BatchLoader(ds, 32, part=(3, 4)).epoch(0)) == 16


def test_global_batch_must_split_over_the_ranks() -> None:
    assert local_batch_size(64, 4) == 16
    with pytest.raises(ConfigError, match="batch_size=66 is the global batch.*multiple of 4"):
        local_batch_size(66, 4)
    with pytest.raises(ConfigError, match="multiple of 3"):
        validate(tiny(batch_size=32), data=False, world_size=3)


def test_world_from_torchrun_environment() -> None:
    assert from_env({}) == World()
    w = from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (w.rank, w.size, w.local_rank, w.local_size, w.main, w.distributed) == (3, 4, 1, 2,
                                                                                   False, True)
    with pytest.raises(DistributedError, match="inconsistent"):
        from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(DistributedError, match="integers"):
        from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_rank_streams_differ_by_rank_and_step() -> None:
    seeds = {distributed.rank_seed(0, r, s) for r in range(4) for s in (0, 100)}
    assert len(seeds) == 8


def test_sync_bn_warnings() -> None:
    mlp = validate(tiny("mlp-cgan-m4", model__sync_bn=True), warn=False, world_size=2)
    assert any("sync_bn=true is ignored" in w for w in mlp)
    bn = validate(tiny("dcgan-r004"), warn=False, world_size=2)
    assert any("set model.sync_bn=true" in w for w in bn)
    assert not [w for w in validate(tiny("dcgan-r004", model__sync_bn=True), warn=False,
                                    world_size=2) if "BatchNorm" in w]
    assert not [w for w in validate(tiny("dcgan-r004"), warn=False) if "BatchNorm" in w]


def test_cpu_sync_batchnorm_is_batchnorm_in_one_process() -> None:
    torch.manual_seed(0)
    bn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    ref = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    ref.load_state_dict(bn.state_dict())
    distributed.sync_batchnorm(bn, torch.device("cpu"))
    assert isinstance(bn[1], distributed.CPUSyncBatchNorm)
    assert bn.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(8, 1, 6, 6)
    assert torch.equal(bn(x), ref(x))  # no process group: plain BatchNorm


def test_sync_batchnorm_keeps_the_activation_a_fused_batchnorm_applied() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.LeakyReLU(0.2))
    ref = copy.deepcopy(net)
    kernels.use([net], "fast")
    distributed.sync_batchnorm(net, torch.device("cpu"))
    assert [type(m) for m in net[1:]] == [distributed.CPUSyncBatchNorm, torch.nn.LeakyReLU]
    x = torch.randn(8, 1, 6, 6)
    torch.testing.assert_close(net(x), ref(x))
