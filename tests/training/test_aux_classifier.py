"""model.aux_classifier: D's classifier head and the AC-GAN terms of both losses."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gankit.config import ConfigError, ModelConfig, resolve
from gankit.losses import get_loss
from gankit.models import build_models
from gankit.training.loop import Trainer
from gankit.training.validate import ignored_settings

SHAPE = (1, 28, 28)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet", "dcgan004"])
def test_every_family_gives_class_logits_from_the_features_of_its_score(arch):
    cfg = ModelConfig(arch=arch, ngf=8, ndf=8, g_hidden=[16], d_hidden=[16], nz=8,
                      aux_classifier=True)
    torch.manual_seed(0)
    _, D = build_models(cfg, SHAPE, 10)
    D.eval()
    x, y = torch.randn(4, *SHAPE), torch.tensor([0, 3, 5, 9])
    with torch.no_grad():
        logits, classes = D(x, y, classes=True)
        torch.testing.assert_close(logits, D(x, y))  # the head changes nothing else
    assert classes.shape == (4, 10)
    _, plain = build_models(dataclasses.replace(cfg, aux_classifier=False), SHAPE, 10)
    assert plain.classifier is None
    with pytest.raises(ValueError, match="no classifier head"):
        plain(x, y, classes=True)


def test_the_head_needs_labels_given_to_d():
    with pytest.raises(ConfigError, match="aux_classifier=true with model.d_cond=none"):
        build_models(ModelConfig(arch="mlp", d_cond="none", aux_classifier=True), SHAPE, 10)


def test_aux_term_is_weighted_cross_entropy():
    loss = get_loss(dataclasses.replace(resolve("default").loss, aux_weight=0.5))
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    expected = 0.5 * (F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(1.0))) / 2
    torch.testing.assert_close(loss.aux(logits, y), expected)
    torch.testing.assert_close(loss.aux(logits, y, generator=True), expected)  # None: the same
    g_only = get_loss(dataclasses.replace(resolve("default").loss, aux_weight=0.5,
                                          g_aux_weight=0.25))
    torch.testing.assert_close(g_only.aux(logits, y), expected)
    torch.testing.assert_close(g_only.aux(logits, y, generator=True), expected / 2)


def test_a_weight_without_the_head_is_reported_as_ignored():
    lines = ignored_settings(resolve("default", {"loss.aux_weight": 0.3,
                                                 "loss.g_aux_weight": 0.2,
                                                 "model.aux_classifier": False}))
    assert any("loss.aux_weight=0.3 is ignored" in line for line in lines)
    assert any("loss.g_aux_weight=0.2 is ignored" in line for line in lines)


def tiny(tmp_path, **over):
    cfg = resolve("default", {"data.limit": 128, "batch_size": 32, "epochs": 1,
                              "model.ngf": 8, "model.ndf": 8, "eval.every": 0, "ema": 0.0,
                              "precision": "fp32", "model.d_norm": "none", **over})
    return Trainer(cfg, tmp_path, progress=False)


def test_training_step_trains_the_head_on_real_labels(tmp_path):
    tr = tiny(tmp_path, **{"model.aux_classifier": True})
    x, y = next(iter(tr.loader.epoch(0)))
    head = tr.D.classifier.weight.detach().clone()
    tr.train_step(x, y, do_g=True)
    assert not torch.equal(head, tr.D.classifier.weight)


def test_g_loss_carries_the_weighted_term(tmp_path):
    """Same seed, same batch, D all but frozen (d_lr 1e-30 leaves fp32 weights as they are):
    G's loss minus its loss at aux_weight 0 is the weighted cross-entropy of the head on G's
    images, so it scales with the weight, and an untrained head's is about ln 10."""
    g_loss = {}
    for w in (0.0, 0.5, 1.0):
        tr = tiny(tmp_path / str(w), **{"model.aux_classifier": True, "loss.aux_weight": w,
                                         "optim.d_lr": 1e-30})
        x, y = next(iter(tr.loader.epoch(0)))
        tr.train_step(x, y, do_g=True)
        g_loss[w] = float(tr.g_sum[0])
    full, half = g_loss[1.0] - g_loss[0.0], g_loss[0.5] - g_loss[0.0]
    assert half == pytest.approx(full / 2, rel=1e-4)
    assert 1.5 < full < 3.5


def test_g_aux_weight_sets_g_term_only(tmp_path):
    """loss.g_aux_weight=0: G's loss is the loss without the term, D's keeps aux_weight's."""
    sums = {}
    for name, over in {"full": {}, "none": {"loss.aux_weight": 0.0},
                       "g0": {"loss.g_aux_weight": 0.0}}.items():
        tr = tiny(tmp_path / name, **{"model.aux_classifier": True, "optim.d_lr": 1e-30, **over})
        x, y = next(iter(tr.loader.epoch(0)))
        tr.train_step(x, y, do_g=True)
        sums[name] = (float(tr.d_sum[0]), float(tr.g_sum[0]))
    assert sums["g0"][1] == pytest.approx(sums["none"][1], rel=1e-5)
    assert sums["g0"][0] == pytest.approx(sums["full"][0], rel=1e-5)
    assert sums["g0"][0] != pytest.approx(sums["none"][0], rel=1e-3)
