"""Experiment configs: typed schema, packaged defaults (``default.yaml``), merge and overrides."""

from unigen_sb3.configs.loader import (
    apply_overrides,
    load_config,
    load_defaults,
    merge_defaults,
    parse_override,
    save_config,
)
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig, config_to_dict, validate_config

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "apply_overrides",
    "config_to_dict",
    "load_config",
    "load_defaults",
    "merge_defaults",
    "parse_override",
    "save_config",
    "validate_config",
]
