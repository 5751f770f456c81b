"""Typed run configurations and the named presets that reproduce the reports."""
from gankit.config.presets import dump, preset_dict, preset_names, resolve
from gankit.config.keys import all_keys, from_dict
from gankit.config.schema import (ConfigError, DataConfig, EvalConfig, LossConfig, ModelConfig,
                                  OptimConfig, TrainConfig, config_key, to_dict)
from gankit.config.yaml_text import load_yaml

__all__ = ["ConfigError", "DataConfig", "EvalConfig", "LossConfig", "ModelConfig", "OptimConfig",
           "TrainConfig", "all_keys", "config_key", "dump", "from_dict", "load_yaml",
           "preset_dict", "preset_names", "resolve", "to_dict"]
