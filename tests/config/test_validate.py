"""`validate(cfg)`: ranges, choices from the registries, schedules, the data and the models,
checked before any work; settings a model family ignores are warnings."""
from __future__ import annotations

import pytest

from gankit.config import ConfigError, preset_names, resolve
from gankit.data import DataError
from gankit.losses import LOSSES
from gankit.models import ARCHITECTURES
from gankit.models.registry import FAMILY_FIELDS
from gankit.training.validate import choices, ignored_settings, validate

DIGITS = {"data.name": "digits"}


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates_with_its_data_and_warns_of_nothing(name, mnist_cache):
    # CIFAR-10 and Quick, Draw! are not in the test cache (and tests run offline): those
    # presets are checked without loading their data.
    cfg = resolve(name)
    assert validate(cfg, data=cfg.data.name == "mnist") == []


@pytest.mark.parametrize("key", sorted(choices()))
def test_a_bad_choice_names_the_key_the_value_and_the_valid_values(key):
    valid = choices()[key]
    with pytest.raises(ConfigError) as e:
        validate(resolve("default", {key: "nonsense"}), data=False)
    msg = str(e.value)
    assert key in msg and "nonsense" in msg
    assert all(v in msg for v in valid), msg


def test_choices_come_from_the_registries():
    assert choices()["model.arch"] == list(ARCHITECTURES)
    assert choices()["loss.name"] == list(LOSSES)
    assert set(FAMILY_FIELDS) == set(ARCHITECTURES)  # every family declares what it reads


@pytest.mark.parametrize("key,value,valid", [
    ("epochs", 0, ">= 1"), ("model.dropout", 1.0, "[0, 1)"), ("optim.g_lr", 0.0, "> 0"),
    ("optim.d_betas", [0.5, 1.2], "[0, 1)"), ("model.g_hidden", [128, 0], ">= 1"),
    ("data.limit", -5, ">= 1"), ("ema", 1.0, "[0, 1)")])
def test_out_of_range(key, value, valid):
    with pytest.raises(ConfigError, match=r"out of range; valid: " + valid.replace("[", r"\[")
                       .replace("(", r"\(").replace(")", r"\)")) as e:
        validate(resolve("default", {key: value}), data=False)
    assert key in str(e.value)


def test_betas_need_two_numbers():
    with pytest.raises(ConfigError, match=r"optim.g_betas=\[0.5\] must hold 2 numbers"):
        validate(resolve("default", {"optim.g_betas": [0.5]}), data=False)


def test_milestones_are_epoch_and_rate():
    with pytest.raises(ConfigError,
                       match=r"optim.g_milestones: \[0(\.0)?, 0.001\] is not a milestone"):
        validate(resolve("default", {"optim.schedule": "piecewise",
                                     "optim.g_milestones": [[0, 1e-3]]}), data=False)


def test_evaluation_needs_more_samples_than_feature_dimensions():
    with pytest.raises(ConfigError, match=r"eval.n=100 is too small.*eval.n > 128"):
        validate(resolve("default", {"eval.n": 100}), data=False)
    validate(resolve("default", {"eval.n": 100, "eval.every": 0}), data=False)  # no eval: fine


def test_unknown_dataset_and_fixed_classes():
    with pytest.raises(ConfigError, match=r"data.name: unknown dataset 'mnits'.*mnist"):
        validate(resolve("default", {"data.name": "mnits"}), data=False)
    with pytest.raises(ConfigError, match=r"data.classes: .*fixed classes"):
        validate(resolve("default", {"data.classes": ["cat"]}), data=False)


def test_cuda_without_cuda(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"device='cuda'.*no CUDA device"):
        validate(resolve("default", {"device": "cuda"}), data=False)
    with pytest.raises(ConfigError, match=r"device='gpu' is not valid"):
        validate(resolve("default", {"device": "gpu"}), data=False)
    for other in ("mps", "xla", "meta"):
        with pytest.raises(ConfigError, match=rf"device='{other}': gankit runs on cpu or cuda"):
            validate(resolve("default", {"device": other}), data=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    validate(resolve("default", {"device": "cuda:1"}), data=False)
    with pytest.raises(ConfigError, match=r"device='cuda:2', but PyTorch sees 2 CUDA"):
        validate(resolve("default", {"device": "cuda:2"}), data=False)


def test_loss_options_are_checked():
    with pytest.raises(ConfigError, match="label_smoothing"):
        validate(resolve("default", {"loss.name": "hinge", "loss.label_smoothing": 0.1}),
                 data=False)


def test_models_are_built_on_the_meta_device_with_their_own_checks():
    cfg = resolve("default", {**DIGITS, "model.g_dropout": 0.2})
    with pytest.raises(ConfigError, match="g_dropout is only supported by arch=mlp"):
        validate(cfg)
    assert validate(cfg, data=False) == []  # without data nothing is built


def test_a_conditional_model_needs_labels(monkeypatch):
    import torch

    from gankit.data import datasets
    from gankit.data.datasets import ImageDataset

    def unlabelled(split, data_dir=None):
        return ImageDataset("blank", split, torch.zeros(8, 1, 28, 28, dtype=torch.uint8), None,
                            ())
    monkeypatch.setitem(datasets.DATASETS, "blank", unlabelled)
    blank = {"data.name": "blank", "eval.every": 0}  # no reference classifier for it
    with pytest.raises(ConfigError, match="needs a labelled dataset"):
        validate(resolve("default", blank))
    validate(resolve("default", {**blank, "model.conditional": False}))


def test_data_errors_come_before_any_work(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        validate(resolve("default", {"data.data_dir": str(tmp_path / "nowhere")}))


def test_settings_a_family_ignores_are_warnings_not_errors(caplog):
    cfg = resolve("dcgan-r004", {"model.ngf": 16, "model.g_hidden": [64]})
    warnings = validate(cfg, data=False)
    assert any(w.startswith("model.ngf=16 is ignored by model.arch=dcgan004") for w in warnings)
    assert any(w.startswith("model.g_hidden=[64] is ignored") for w in warnings)
    mlp = resolve("mlp-gan-r003", {"model.embed_dim": 4, "model.ndf": 8})
    assert ignored_settings(mlp) == [
        "model.embed_dim=4 is ignored: model.conditional=false",
        "model.ndf=8 is ignored by model.arch=mlp (it reads d_hidden, dropout, g_dropout, "
        "g_hidden besides the shared settings)"]


def test_late_and_unread_milestones_are_warnings():
    m4 = resolve("mlp-cgan-m4", {"epochs": 5})
    assert ignored_settings(m4) == ["optim milestones at epoch 1600, 1700 are not before the "
                                    "end (5 epochs): those learning rates are never used"]
    const = resolve("mlp-cgan-m4", {"optim.schedule": "constant"})
    assert "only piecewise reads them" in ignored_settings(const)[0]


def test_recipe_blocks_validate_and_refuse_clearly():
    good = {"loss.name": "hinge", "model.spectral_norm": True, "model.d_cond": "projection",
            "model.d_norm": "none", "loss.r1_gamma": 0.1, "loss.r1_every": 4,
            "augment": "translation,cutout", "ema_rampup": 0.05, "optim.d_lr": 4e-4}
    assert validate(resolve("default", good), data=False) == []
    with pytest.raises(ConfigError, match=r"loss.r1_gamma=1 with loss.name=wgan-gp: choose one"):
        validate(resolve("default", {"loss.name": "wgan-gp", "loss.r1_gamma": 1.0}), data=False)
    with pytest.raises(ConfigError, match=r"augment='flip': unknown transform 'flip'"):
        validate(resolve("default", {"augment": "flip"}), data=False)
    for key, value in (("loss.r1_gamma", -1.0), ("loss.r1_every", 0), ("ema_rampup", -0.1)):
        with pytest.raises(ConfigError, match=rf"{key}=.* is out of range"):
            validate(resolve("default", {key: value}), data=False)
    warnings = validate(resolve("default", {"ema": 0.0, "ema_rampup": 0.05, "loss.r1_gamma": 0.0,
                                            "loss.r1_every": 8}), data=False, warn=False)
    assert any("ema_rampup=0.05 is ignored: ema=0" in w for w in warnings)
    assert any("loss.r1_every=8 is ignored: loss.r1_gamma=0" in w for w in warnings)
    mlp = validate(resolve("mlp-cgan-m4", {"model.d_norm": "none"}), data=False, warn=False)
    assert any("model.d_norm='none' is ignored by model.arch=mlp" in w for w in mlp)


def test_on_and_off_read_as_yaml_booleans_are_the_words():
    """YAML 1.1 reads `on`/`off` as booleans: `--set compile=on` and `compile: off` in a
    file are the settings' words, not a type error."""
    from gankit.config.keys import apply
    cfg = resolve("dcgan-r004")
    assert apply(cfg, ["compile=on"]).compile == "on"
    assert apply(cfg, {"compile": False}).compile == "off"
    with pytest.raises(ConfigError, match="expected a string"):
        apply(cfg, {"compile": 3})
