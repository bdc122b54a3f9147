"""Typed experiment configuration: dataclasses plus a validator that names dotted key paths.

The dataclasses here carry *no* defaults: the packaged ``default.yaml`` is the one place
defaults live (``reward.weights`` is derived from
:data:`unigen_sb3.rewards.unifier.DEFAULT_WEIGHTS`). :func:`validate_config` turns a
merged plain dict into an :class:`ExperimentConfig`, refusing unknown keys, missing keys
and wrong types with a :class:`ConfigError` that names the dotted key path, the value seen
and what is accepted.

An enumeration that the package defines elsewhere (task kinds, action encodings, observation
modes, backends, prompt splits, reference modes, normalizations, vec-env kinds, component
names) is a ``str`` field whose metadata holds that constant (``field(metadata=_choices(...))``),
so a value added to the constant is accepted here too; the enumerations that exist only in
the config (sweep sampler and direction, wandb mode) stay ``Literal`` types.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from unigen_sb3.data.prompts import SPLITS
from unigen_sb3.envs.bank import MAX_TASK_BANK_SIZE, check_task_bank_features
from unigen_sb3.envs.tasks import REFERENCE_MODES, TASK_KINDS
from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.rewards.normalizers import NORMALIZATIONS
from unigen_sb3.rewards.perceptual import PERCEPTUAL_BACKENDS
from unigen_sb3.rewards.unifier import validate_weights
from unigen_sb3.spec import OBS_MODES, VEC_ENV_KINDS
from unigen_sb3.wrappers.actions import ACTION_ENCODINGS

__all__ = [
    "AblationConfig",
    "AlgorithmConfig",
    "CallbacksConfig",
    "ConfigError",
    "EnvConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "RewardConfig",
    "ShapingConfig",
    "SweepConfig",
    "TrainingConfig",
    "WandbConfig",
    "WarmStartConfig",
    "config_to_dict",
    "validate_config",
]


class ConfigError(ValueError):
    """A config value that is not accepted.

    :param path: dotted key path of the offending entry (``""`` for the root).
    :param message: what was wrong and what is accepted.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path or '<config>'}: {message}")


def _range(
    low: float | None = None, high: float | None = None, why: str | None = None
) -> dict[str, Any]:
    """Field metadata for a numeric range check (inclusive bounds); ``why``: the reason for an
    upper bound, given in the error."""
    return {"low": low, "high": high, "why": why}


_MAX_SIZE = 1024
_MAX_N_ENVS = 1024
_MAX_TIMESTEPS = 10**10
_MAX_SHAPING_SCALE = 1000.0
_MAX_RUN_CPUS = 1024


def _choices(values: Sequence[str]) -> dict[str, Any]:
    """Field metadata for a ``str`` field (or each item of a ``list[str]``) that must be one
    of ``values``: pass the constant that defines them, so a value added there is accepted
    here too."""
    return {"choices": tuple(values)}


@dataclass
class EnvConfig:
    """Env settings: :meth:`~unigen_sb3.spec.UniGenSpec.from_config` makes them a spec."""

    task: str = field(metadata=_choices(TASK_KINDS))
    action: str = field(metadata=_choices(ACTION_ENCODINGS))
    obs: str = field(metadata=_choices(OBS_MODES))
    size: int = field(
        metadata=_range(
            36,
            _MAX_SIZE,
            "the canvas and its metric passes grow with size**2 per env; beyond "
            f"{_MAX_SIZE} one env no longer fits a GPU",
        )
    )
    horizon: int = field(
        metadata=_range(1, 10_000, "an episode pays its reward at its end; longer ones never end")
    )
    device: str
    perceptual_backend: str = field(metadata=_choices(PERCEPTUAL_BACKENDS))
    edit_fraction: float = field(metadata=_range(0.0, 1.0))
    prompt_split: str | None = field(metadata=_choices(SPLITS))
    reference: str = field(metadata=_choices(REFERENCE_MODES))
    action_options: dict[str, Any]
    dense_components: bool
    task_bank_size: int | None = field(
        metadata=_range(
            1,
            MAX_TASK_BANK_SIZE,
            "the bank holds 40 * size**2 bytes per task and env on the device",
        )
    )
    task_bank_features: bool


@dataclass
class ShapingConfig:
    """Potential-based shaping (see :class:`~unigen_sb3.rewards.shaping.PotentialShaping`).

    ``gamma: null`` takes the algorithm's discount, the only value that keeps the optimal
    policy; an explicit different value is refused before training.
    """

    enabled: bool
    gamma: float | None = field(metadata=_range(0.0, 1.0))
    potential: str = field(metadata=_choices(COMPONENT_NAMES))
    scale: float = field(
        metadata=_range(
            -_MAX_SHAPING_SCALE,
            _MAX_SHAPING_SCALE,
            "the potential is in [0, 1]; a larger scale swamps the reward and overflows "
            "float32 (inf rewards, then NaN in the policy update)",
        )
    )


@dataclass
class RewardConfig:
    """Weights, component normalization and shaping of the unified reward.

    ``weights`` are kept as written; :meth:`effective_weights` gives the ones used (rescaled
    to sum 1 when ``normalize_weights`` is true).
    """

    weights: dict[str, float]
    normalize_weights: bool
    normalization: str = field(metadata=_choices(NORMALIZATIONS))
    shaping: ShapingConfig

    def effective_weights(self) -> dict[str, float]:
        """:return: the weights the env uses, component name -> weight (summing to 1)."""
        return validate_weights(self.weights, normalize=self.normalize_weights)


@dataclass
class AlgorithmConfig:
    """Any SB3 / sb3-contrib algorithm by name, its policy and constructor kwargs.

    ``policy: null`` picks one from the observation mode; ``policy: hybrid`` picks
    :mod:`unigen_sb3.policies`' hybrid policy for the observation mode (PPO and A2C with
    ``env.action: box`` only); ``kwargs`` are passed to the algorithm's constructor and
    checked against its signature.
    """

    name: str
    policy: str | None
    kwargs: dict[str, Any]


@dataclass
class WarmStartConfig:
    """Behaviour cloning before RL (:mod:`unigen_sb3.experiments.warm_start`).

    ``demos: 0`` turns it off. Otherwise a fresh run first clones ``demos`` Oracle episodes
    into the policy (PPO and A2C), then trains only the value head for ``critic_warmup``
    timesteps (counted in ``total_timesteps``), then runs the algorithm on every parameter.
    """

    demos: int = field(metadata=_range(0, 1_000_000, "more demonstrations than fit in memory"))
    bc_epochs: int = field(metadata=_range(1))
    bc_patience: int = field(metadata=_range(1))
    bc_learning_rate: float = field(metadata=_range(0.0, 1.0))
    critic_warmup: int = field(metadata=_range(0))
    critic_learning_rate: float = field(metadata=_range(0.0, 1.0))


@dataclass
class TrainingConfig:
    """Budget, vectorization, checkpointing and logging of ``train``."""

    total_timesteps: int = field(
        metadata=_range(
            1, _MAX_TIMESTEPS, "more timesteps than any run of this package can reach (a typo?)"
        )
    )
    n_envs: int = field(
        metadata=_range(
            1,
            _MAX_N_ENVS,
            "each env holds its canvases and buffers; more than this exhausts "
            "memory before training starts",
        )
    )
    vec_env_kind: str = field(metadata=_choices(VEC_ENV_KINDS))
    device: str
    checkpoint_freq: int = field(metadata=_range(0))
    save_replay_buffer: bool
    log_interval: int = field(metadata=_range(1))
    progress_bar: bool
    tensorboard: bool
    torch_threads: int | None = field(metadata=_range(1))
    warm_start: WarmStartConfig


@dataclass
class CallbacksConfig:
    """Which of the package's callbacks ``train`` attaches."""

    reward_components: bool
    image_log: bool
    image_log_freq: int = field(metadata=_range(1))
    eval: bool
    eval_freq: int = field(metadata=_range(1))
    eval_episodes: int = field(metadata=_range(2))  # the set metrics need two episodes
    early_stop_patience: int | None = field(metadata=_range(1))


@dataclass
class EvaluationConfig:
    """The evaluation suite run after training and by ``eval``.

    ``seed: null`` uses the master seed plus 10_000, so evaluation tasks never coincide
    with the first training tasks; ``prompt_split`` is the split evaluated on; ``weights:
    null`` scores ``reward_total`` with the training weights (``ablate`` and ``sweep`` set
    the base weights, so runs trained on different weights share one yardstick).
    """

    weights: dict[str, float] | None
    n_episodes: int = field(metadata=_range(2))  # the set metrics need two episodes
    seed: int | None = field(metadata=_range(0, 2**32 - 1, "a NumPy seed is a uint32"))
    deterministic: bool
    prompt_split: str | None = field(metadata=_choices(SPLITS))


@dataclass
class AblationConfig:
    """What ``ablate`` runs: the base weights, drops, a weight grid, each over ``n_seeds``.

    ``num_cpus`` and ``num_gpus`` are what one run (one task) needs: the resources a Ray
    task asks for (``--executor ray``; fractions share a CPU or GPU), the default
    ``--max-parallel`` of ``--executor processes`` (CPUs / ``num_cpus``), and, when
    ``training.torch_threads`` is null, each run's torch threads (``num_cpus`` rounded down,
    at least 1) under every executor, so a run's numbers do not depend on where it ran.
    """

    drop: list[str] = field(metadata=_choices(COMPONENT_NAMES))
    weight_grid: list[dict[str, float]]
    variants: dict[str, dict[str, Any]]
    n_seeds: int = field(metadata=_range(1))
    num_cpus: float = field(
        metadata=_range(
            0.0,
            _MAX_RUN_CPUS,
            f"more CPUs than a node has; a run uses at most {_MAX_RUN_CPUS} torch threads",
        )
    )
    num_gpus: float = field(
        metadata=_range(
            0.0,
            1.0,
            "a run trains on one device (training.device), so a second GPU would sit idle; "
            "fractions below 1 let runs share a GPU",
        )
    )


@dataclass
class SweepConfig:
    """What ``sweep`` searches with Optuna.

    ``search_space`` maps an algorithm kwarg to ``{type: float|int|categorical, low, high,
    log, choices}``; ``sweep_weights`` adds the three reward weights (sampled on the simplex).
    The objective is ``metric``'s mean in ``eval.json``, scored with the base config's
    weights so trials that train on different weights stay comparable.
    """

    n_trials: int = field(metadata=_range(1))
    metric: str
    direction: Literal["maximize", "minimize"]
    sampler: Literal["tpe", "random"]
    study_name: str
    sweep_weights: bool
    search_space: dict[str, dict[str, Any]]


@dataclass
class WandbConfig:
    """Weights & Biases tracking (optional extra ``wandb``); off by default."""

    enabled: bool
    project: str
    mode: Literal["offline", "online", "disabled"]


@dataclass
class ExperimentConfig:
    """One experiment: everything ``unigen-sb3`` needs, after defaults were merged in."""

    seed: int = field(metadata=_range(0, 2**32 - 1))
    strict_determinism: bool
    env: EnvConfig
    reward: RewardConfig
    algorithm: AlgorithmConfig
    training: TrainingConfig
    callbacks: CallbacksConfig
    evaluation: EvaluationConfig
    ablation: AblationConfig
    sweep: SweepConfig
    wandb: WandbConfig


_SEARCH_TYPES = ("float", "int", "categorical")


def _type_name(tp: Any, choices: tuple[str, ...] | None = None) -> str:
    """How an annotation reads in a message; ``choices``: a ``_choices`` field's values."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if tp is str and choices is not None:
        return " | ".join(repr(c) for c in choices)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a, choices) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0], choices)}"
    if origin is dict:
        return f"mapping of {_type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _seen(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _convert(value: Any, tp: Any, path: str, choices: tuple[str, ...] | None = None) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (nested dataclasses built).

    :param choices: the accepted values of a ``_choices`` field: its ``str`` (or the ``str``
        items of its list) must be one of them, checked and reported as a ``Literal`` is.
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path, choices)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(path, f"expected {_type_name(tp, choices)}, got {_seen(value)}")
    if origin is Literal:
        _check_choice(value, typing.get_args(tp), path)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected {_type_name(tp, choices)}, got {_seen(value)}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(v, item_tp, f"{path}[{i}]", choices) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected {_type_name(tp)}, got {_seen(value)}")
        _key_tp, val_tp = typing.get_args(tp)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(path, f"keys must be strings, got {_seen(k)}")
            out[k] = _convert(v, val_tp, f"{path}.{k}")
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_seen(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            hint = ""
            if isinstance(value, str) and value.strip().lstrip("+-").replace("e", "", 1).isdigit():
                hint = " (YAML reads 1e4 as a string: write 10000)"
            raise ConfigError(path, f"expected an integer, got {_seen(value)}{hint}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {_seen(value)}")
        if not math.isfinite(value):
            raise ConfigError(path, f"expected a finite number, got {_seen(value)}")
        return float(value)
    if tp is str:
        if choices is not None:
            _check_choice(value, choices, path)
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_seen(value)}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # a schema bug, not a user error


def _check_choice(value: Any, choices: tuple[Any, ...], path: str) -> None:
    if value not in choices or isinstance(value, bool):
        raise ConfigError(path, f"expected one of {list(choices)}, got {_seen(value)}")


def _build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from mapping ``data``: no unknown, no missing keys."""
    if not isinstance(data, dict):
        raise ConfigError(
            path, f"expected a mapping with keys {_field_names(cls)}, got {_seen(data)}"
        )
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in known]
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"{where}{unknown[0]}",
            f"unknown key; accepted keys{' under ' + path if path else ''}: {sorted(known)}",
        )
    values: dict[str, Any] = {}
    for name, f in known.items():
        key_path = f"{path}.{name}" if path else name
        choices = f.metadata.get("choices")
        if name not in data:
            raise ConfigError(key_path, f"missing (expected {_type_name(hints[name], choices)})")
        value = _convert(data[name], hints[name], key_path, choices)
        low, high = f.metadata.get("low"), f.metadata.get("high")
        if value is not None and isinstance(value, int | float):
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = (
                    f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
                )
                why = f.metadata.get("why")
                reason = f": {why}" if why and high is not None and value > high else ""
                raise ConfigError(key_path, f"{value!r} is out of range {bounds}{reason}")
        values[name] = value
    return cls(**values)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


_DEVICES = "'auto', 'cpu', 'cuda', 'cuda:N' (N >= 0) or another torch device such as 'mps'"


def _check_device(device: str, path: str, *, require_cuda: bool) -> None:
    """Accept what :func:`~unigen_sb3.utils.resolve_device` accepts: ``auto`` or a torch device.

    :param require_cuda: also refuse a CUDA device when CUDA is not available here, as
        ``resolve_device`` does (``env.device``); SB3 falls back to the CPU instead
        (``training.device``).
    """
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(path, f"expected {_DEVICES}, got {_seen(device)}") from None
    if require_cuda and dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            path,
            f"{device!r} asks for CUDA, but CUDA is not available here (the env needs it when "
            "it is built); use 'auto' (CUDA when present, else the CPU) or 'cpu'",
        )


def _check_weights(
    weights: dict[str, float], path: str, normalize: bool = False
) -> dict[str, float]:
    missing = [n for n in COMPONENT_NAMES if n not in weights]
    extra = [n for n in weights if n not in COMPONENT_NAMES]
    if extra:
        raise ConfigError(
            f"{path}.{extra[0]}", f"unknown component; accepted: {list(COMPONENT_NAMES)}"
        )
    if missing:
        raise ConfigError(
            path,
            f"must give every component weight {list(COMPONENT_NAMES)} (they sum to 1), "
            f"missing {missing}",
        )
    try:
        validate_weights(weights, normalize=normalize)
    except ValueError as exc:
        message = str(exc)
        hint = "pass normalize_weights=True"
        if path == "reward.weights":  # the only weights that reward.normalize_weights rescales
            message = message.replace(hint, "set reward.normalize_weights")
        else:
            message = message.replace(f", or {hint} to rescale them", "")
        raise ConfigError(path, message) from exc
    return {n: float(weights[n]) for n in COMPONENT_NAMES}


_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Keys an ablation variant may not set: the plan itself, the seed the plan sets per run, and
#: the evaluation (every variant is scored on the same tasks with the same weights).
_VARIANT_FORBIDDEN = ("seed", "ablation", "sweep", "evaluation")


def _check_variant_names(variants: dict[str, dict[str, Any]], path: str) -> None:
    """Each variant is a folder ``OUT/<name>/`` and sets dotted keys of the run config."""
    for name, overrides in variants.items():
        if not _VARIANT_NAME.fullmatch(name) or name in (".", ".."):
            raise ConfigError(
                f"{path}.{name}",
                "a variant name is a folder name: 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit",
            )
        if not overrides:
            raise ConfigError(
                f"{path}.{name}",
                "sets no key; give {dotted.key: value, ...} (the base config is the 'full' "
                "variant already)",
            )
        for key in overrides:
            if key.split(".")[0] in _VARIANT_FORBIDDEN:
                raise ConfigError(
                    f"{path}.{name}.{key}",
                    f"a variant cannot set {', '.join(_VARIANT_FORBIDDEN)}: the ablation sets "
                    "each run's seed, is the plan, and scores every variant on the same "
                    "evaluation; set a training, env, reward, algorithm or callbacks key",
                )


def _check_search_space(space: dict[str, dict[str, Any]], path: str) -> None:
    allowed = {"type", "low", "high", "log", "choices"}
    for name, spec in space.items():
        p = f"{path}.{name}"
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ConfigError(f"{p}.{unknown[0]}", f"unknown key; accepted: {sorted(allowed)}")
        kind = spec.get("type")
        if kind not in _SEARCH_TYPES:
            raise ConfigError(f"{p}.type", f"expected one of {list(_SEARCH_TYPES)}, got {kind!r}")
        if kind == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ConfigError(f"{p}.choices", "a categorical needs a non-empty list of choices")
            continue
        for bound in ("low", "high"):
            v = spec.get(bound)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"{p}.{bound}", f"expected a number, got {v!r}")
            if not math.isfinite(v):
                raise ConfigError(f"{p}.{bound}", f"expected a finite number, got {v!r}")
        if spec["low"] >= spec["high"]:
            raise ConfigError(p, f"low={spec['low']} must be below high={spec['high']}")
        if "log" in spec and not isinstance(spec["log"], bool):
            raise ConfigError(f"{p}.log", f"expected true or false, got {spec['log']!r}")
        if spec.get("log") and spec["low"] <= 0:
            raise ConfigError(f"{p}.low", f"a log-scale range needs low > 0, got {spec['low']}")


def validate_config(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a fully merged config dict and build the typed config.

    Devices are checked as :func:`~unigen_sb3.utils.resolve_device` does (``auto`` or a torch
    device string; ``env.device`` naming CUDA also needs CUDA available here). Weights are
    checked as the reward library does
    (:func:`~unigen_sb3.rewards.unifier.validate_weights`: each in ``[0, 1]``, summing to 1),
    here and in every ``ablation.weight_grid`` entry, so a bad weight is refused before any
    training starts.

    :param data: the merged config (defaults + user file + overrides).
    :return: the typed :class:`ExperimentConfig`.
    :raises ConfigError: naming the dotted path of the first problem found.
    """
    cfg: ExperimentConfig = _build(ExperimentConfig, data, "")
    _check_device(cfg.env.device, "env.device", require_cuda=True)
    _check_device(cfg.training.device, "training.device", require_cuda=False)
    try:  # the env's own rule (a bank for its targets' features), refused before training
        check_task_bank_features(cfg.env.task_bank_features, cfg.env.task_bank_size)
    except ValueError as exc:
        raise ConfigError("env.task_bank_features", str(exc)) from None
    cfg.reward.weights = _check_weights(
        cfg.reward.weights, "reward.weights", cfg.reward.normalize_weights
    )
    if cfg.evaluation.weights is not None:
        cfg.evaluation.weights = _check_weights(cfg.evaluation.weights, "evaluation.weights")
    cfg.ablation.weight_grid = [
        _check_weights(w, f"ablation.weight_grid[{i}]")
        for i, w in enumerate(cfg.ablation.weight_grid)
    ]
    if cfg.ablation.num_cpus <= 0:
        raise ConfigError(
            "ablation.num_cpus",
            f"{cfg.ablation.num_cpus!r} must be > 0: a run needs some CPU (a fraction such as "
            "0.5 lets two runs share a core under --executor ray)",
        )
    _check_variant_names(cfg.ablation.variants, "ablation.variants")
    _check_search_space(cfg.sweep.search_space, "sweep.search_space")
    return cfg


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """:return: the config as plain Python values (what ``config.yaml`` stores)."""
    return dataclasses.asdict(config)
