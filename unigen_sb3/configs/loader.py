"""Load experiment YAMLs: packaged defaults, non-destructive merge, ``--set`` overrides.

Order: packaged ``default.yaml`` <- the user's file (what it writes always wins) <-
``--set dotted.key=value`` overrides, then :func:`~unigen_sb3.configs.schema.validate_config`.

Example:
    >>> cfg = load_config({"training": {"total_timesteps": 256}}, ["seed=7"])
    >>> cfg.seed, cfg.training.total_timesteps, cfg.algorithm.name
    (7, 256, 'PPO')
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from unigen_sb3.configs.schema import ConfigError, ExperimentConfig, config_to_dict, validate_config
from unigen_sb3.configs.shipped import resolve_config
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS
from unigen_sb3.utils import atomic_write_text

__all__ = [
    "ATOMIC_KEYS",
    "apply_overrides",
    "load_config",
    "load_defaults",
    "load_yaml",
    "merge_defaults",
    "parse_override",
    "parse_yaml",
    "save_config",
]

#: Mappings a user config replaces as a whole instead of merging key by key: a partial
#: weight set mixed with default weights would silently change what the user meant.
ATOMIC_KEYS = frozenset({"reward.weights", "evaluation.weights", "sweep.search_space"})

#: The largest config file read (a config is a few kB; a bigger file is a mistake or a bomb).
MAX_CONFIG_BYTES = 1 << 20
#: The deepest nesting of mappings and lists accepted (in a file, a ``--set`` value or key).
MAX_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys and aliases.

    A duplicate key would silently let the last one win; an alias (``*name``) can expand a
    few hundred bytes into gigabytes once the config is copied or saved (a "billion laughs"
    bomb), and a config has no need for one.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not accepted in configs: write the value "
                "out where it is used",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # an unhashable key: construct_mapping names it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"duplicate key {key!r}: each key may appear once (the last one would "
                        "silently win)",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep)


def _depth_error(data: Any) -> str | None:
    """The path of a node nested deeper than :data:`MAX_DEPTH`, or None (no recursion)."""
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return path or "<config>"
        if isinstance(node, dict):
            stack.extend((v, depth + 1, f"{path}.{k}" if path else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(node))
    return None


def parse_yaml(text: str, where: str) -> Any:
    """Parse config YAML safely: no tags, no aliases, no duplicate keys, bounded nesting.

    :param text: the YAML text.
    :param where: how to name it in errors (a file path, ``override 'key'``).
    :return: the parsed value.
    :raises ConfigError: for anything refused, in one line.
    """
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(
            "", f"{where} is nested too deeply (at most {MAX_DEPTH} levels)"
        ) from None
    deep = _depth_error(data)
    if deep is not None:
        raise ConfigError(deep, f"{where} is nested deeper than {MAX_DEPTH} levels")
    return data


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load`` (an empty file is ``{}``).

    :param path: the file.
    :return: the mapping.
    Refused, each with a one-line :class:`ConfigError`: a folder, a file over
    :data:`MAX_CONFIG_BYTES`, bytes that are not UTF-8, invalid YAML, duplicate keys, aliases
    and nesting deeper than :data:`MAX_DEPTH`.

    :raises ConfigError: if the file is refused or not a mapping at the top.
    :raises FileNotFoundError: if the file does not exist.
    """
    file = Path(path)
    if file.is_dir():
        raise ConfigError("", f"{path} is a folder, not a YAML config file")
    if file.exists() and file.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            "", f"{path} holds {file.stat().st_size} bytes; a config is at most {MAX_CONFIG_BYTES}"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "", f"{path} is not a UTF-8 text file (byte {exc.start}: {exc.reason})"
        ) from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("", f"{path} must hold a mapping at the top, got {type(data).__name__}")
    return data


def load_defaults() -> dict[str, Any]:
    """:return: the packaged defaults (``unigen_sb3/configs/default.yaml``) as a fresh dict."""
    text = resources.files("unigen_sb3.configs").joinpath("default.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def merge_defaults(
    defaults: Mapping[str, Any], user: Mapping[str, Any], _path: str = ""
) -> dict[str, Any]:
    """Fill what ``user`` left out from ``defaults``; never change what ``user`` wrote.

    Mappings merge key by key (except :data:`ATOMIC_KEYS`, which the user replaces
    whole); lists and scalars from ``user`` replace the default. Neither input is modified.

    :param defaults: the defaults.
    :param user: the user's (partial) config.
    :return: a new merged dict.
    """
    out = copy.deepcopy(dict(defaults))
    for key, value in user.items():
        path = f"{_path}.{key}" if _path else str(key)
        base = out.get(key)
        if isinstance(value, Mapping) and isinstance(base, Mapping) and path not in ATOMIC_KEYS:
            out[key] = merge_defaults(base, value, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value``; the value is parsed as YAML (``7`` -> int, ``[1, 2]`` -> list).

    :param text: the override as given to ``--set``.
    :return: ``(dotted_key, value)``.
    :raises ConfigError: if there is no ``=`` or the key is empty.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError("", f"override {text[:200]!r} must look like dotted.key=value")
    if key.count(".") >= MAX_DEPTH:
        raise ConfigError(
            "", f"override key {key[:80]!r}... has more than {MAX_DEPTH} levels; no config key does"
        )
    try:
        value = parse_yaml(raw, f"override value for {key!r}") if raw.strip() else ""
    except ConfigError as exc:
        raise ConfigError(key, exc.message) from None
    return key, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set dotted.key=value`` overrides (in order) to a copy of ``data``.

    Missing intermediate mappings are created, so a typo'd key reaches validation, which
    names it.

    :param data: the config dict.
    :param overrides: strings ``dotted.key=value``.
    :return: the new dict.
    :raises ConfigError: if a path runs through a value that is not a mapping.
    """
    out = copy.deepcopy(data)
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(
                    where, f"is {child!r}, not a mapping, so {key!r} cannot be set under it"
                )
            node = child
        node[parts[-1]] = value
    return out


def _resolve_derived_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Replace ``null`` entries whose default lives in code (one source of truth)."""
    reward = data.get("reward")
    if isinstance(reward, dict) and reward.get("weights") is None:
        reward["weights"] = dict(DEFAULT_WEIGHTS)
    return data


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
) -> ExperimentConfig:
    """Load, merge with the packaged defaults, apply overrides and validate.

    :param source: a YAML file, a shipped config's name (``"quickstart"``, see
        :mod:`unigen_sb3.configs.shipped`; an existing file wins), an already-loaded mapping,
        or ``None`` (defaults only).
    :param overrides: ``dotted.key=value`` strings applied after the merge.
    :return: the validated :class:`ExperimentConfig`.
    :raises ConfigError: naming the dotted key path of the first problem.
    """
    if source is None:
        user: Mapping[str, Any] = {}
    elif isinstance(source, Mapping):
        user = source
    else:
        user = load_yaml(resolve_config(source))
    merged = _resolve_derived_defaults(merge_defaults(load_defaults(), user))
    merged = _resolve_derived_defaults(apply_overrides(merged, overrides))
    return validate_config(merged)


def save_config(config: ExperimentConfig, path: str | os.PathLike[str]) -> None:
    """Write the merged config as YAML (atomically); :func:`load_config` reads it back equal.

    :param config: the config.
    :param path: destination file, e.g. ``RUN_DIR/config.yaml``.
    """
    text = yaml.dump(
        config_to_dict(config), Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False
    )
    atomic_write_text(path, text)


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value each time it appears, never an alias (which :func:`load_yaml` refuses)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
