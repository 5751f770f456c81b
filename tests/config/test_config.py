"""Presets load and resolve; overrides are typed; bad keys and values are clear errors."""
from __future__ import annotations

import pytest

from gankit.config import ConfigError, preset_names, resolve

REPORT_PRESETS = {"mlp-cgan-m1", "mlp-cgan-m2", "mlp-cgan-m3", "mlp-cgan-m4", "dcgan-r001",
                  "cdcgan-r001", "resnet-cgan-r002", "mlp-gan-r003", "dcgan-r004",
                  "default"}


def test_every_report_system_is_a_preset() -> None:
    assert REPORT_PRESETS <= set(preset_names())


@pytest.mark.parametrize("name", sorted(REPORT_PRESETS))
def test_preset_resolves_and_names_its_report(name: str) -> None:
    cfg = resolve(name)
    assert cfg.preset == name and cfg.report and cfg.notes
    for key in ("epochs", "batch_size", "seed"):
        assert isinstance(getattr(cfg, key), int)


def test_overrides_with_dotted_keys_and_yaml_values() -> None:
    cfg = resolve("mlp-cgan-m4", ["epochs=3", "data.limit=2000", "optim.g_lr=1e-3",
                                 "model.g_hidden=[64, 64]", "ema=0.99"])
    assert (cfg.epochs, cfg.data.limit, cfg.optim.g_lr) == (3, 2000, 1e-3)
    assert cfg.model.g_hidden == [64, 64] and cfg.ema == 0.99


def test_report_values_survive() -> None:
    m4 = resolve("mlp-cgan-m4")
    assert (m4.model.nz, m4.batch_size, m4.loss.name) == (128, 64, "minimax")
    r = resolve("resnet-cgan-r002")
    assert (r.d_steps, r.optim.g_lr, r.optim.d_lr, r.batch_size) == (9, 2e-5, 2e-4, 32)
    d = resolve("dcgan-r004")
    assert (d.data.rotation, d.optim.g_betas, d.model.nz) == (20.0, [0.5, 0.99], 64)


def test_unknown_key_lists_nearest() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'optim\.g_lrr'.*optim\.g_lr"):
        resolve("mlp-cgan-m4", ["optim.g_lrr=1"])
    with pytest.raises(ConfigError, match=r"'epoch'.*epochs"):
        resolve("mlp-cgan-m4", {"epoch": 3})


def test_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"epochs: expected an integer, got 'three'"):
        resolve("mlp-cgan-m4", ["epochs=three"])
    with pytest.raises(ConfigError, match=r"model.conditional: expected true or false"):
        resolve("mlp-cgan-m4", ["model.conditional=maybe"])


def test_unknown_preset_suggests() -> None:
    with pytest.raises(ConfigError, match=r"no preset named 'mlp-cgan-m5'.*mlp-cgan-m"):
        resolve("mlp-cgan-m5")


def test_set_without_equals() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        resolve("default", ["epochs"])
