"""Algorithms by name: SB3 and sb3-contrib classes, their default policy and kwargs check."""

from __future__ import annotations

import importlib
import inspect
import math
import re
import types
import typing
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy

from unigen_sb3.configs.schema import ConfigError
from unigen_sb3.policies import HybridCnnPolicy, HybridMultiInputPolicy

__all__ = [
    "ALGORITHM_ACTIONS",
    "CONTRIB_ALGORITHMS",
    "HYBRID_ALGORITHMS",
    "HYBRID_POLICY",
    "SB3_ALGORITHMS",
    "algorithm_gamma",
    "check_algorithm",
    "default_policy",
    "get_algorithm_class",
    "hybrid_policy",
    "is_off_policy",
]

SB3_ALGORITHMS = ("A2C", "DDPG", "DQN", "PPO", "SAC", "TD3")
CONTRIB_ALGORITHMS = ("ARS", "CrossQ", "MaskablePPO", "QRDQN", "RecurrentPPO", "TQC", "TRPO")

#: The ``env.action`` encodings each algorithm's action spaces allow (SB3 / sb3-contrib docs).
ALGORITHM_ACTIONS: dict[str, tuple[str, ...]] = {
    "PPO": ("box", "multidiscrete", "discrete"),
    "A2C": ("box", "multidiscrete", "discrete"),
    "TRPO": ("box", "multidiscrete", "discrete"),
    "RecurrentPPO": ("box", "multidiscrete", "discrete"),
    "ARS": ("box", "discrete"),
    "SAC": ("box",),
    "TD3": ("box",),
    "DDPG": ("box",),
    "TQC": ("box",),
    "CrossQ": ("box",),
    "DQN": ("discrete",),
    "QRDQN": ("discrete",),
    "MaskablePPO": ("multidiscrete", "discrete"),
}


HYBRID_POLICY = "hybrid"
"""``algorithm.policy`` value for :mod:`unigen_sb3.policies`' hybrid policy (by ``env.obs``)."""
HYBRID_ALGORITHMS = ("PPO", "A2C")
"""The algorithms ``algorithm.policy: hybrid`` works with (SB3's on-policy, Box actions)."""


def hybrid_policy(name: str, action: str, obs: str) -> type[BasePolicy]:
    """The hybrid policy class for ``algorithm.policy: hybrid``.

    :param name: ``algorithm.name``; one of :data:`HYBRID_ALGORITHMS`.
    :param action: ``env.action``; must be ``"box"`` (the policy acts on its flat layout).
    :param obs: ``env.obs``: ``"image"`` -> ``HybridCnnPolicy``, ``"dict"`` ->
        ``HybridMultiInputPolicy``.
    :return: the policy class.
    :raises ConfigError: at ``algorithm.policy`` for another algorithm, at ``env.action``
        for another encoding, at ``env.obs`` for an unknown observation mode.
    """
    if name not in HYBRID_ALGORITHMS:
        why = " (MaskablePPO refuses Box action spaces)" if name == "MaskablePPO" else ""
        raise ConfigError(
            "algorithm.policy",
            f"policy {HYBRID_POLICY!r} works with {list(HYBRID_ALGORITHMS)} (on-policy, Box "
            f"actions), got algorithm.name={name!r}{why}",
        )
    if action != "box":
        raise ConfigError(
            "env.action",
            f"algorithm.policy={HYBRID_POLICY!r} acts on the flat 'box' encoding; "
            f"got env.action={action!r}, accepted: ['box']",
        )
    classes: dict[str, type[BasePolicy]] = {
        "image": HybridCnnPolicy,
        "dict": HybridMultiInputPolicy,
    }
    if obs not in classes:
        raise ConfigError(
            "env.obs", f"algorithm.policy={HYBRID_POLICY!r} takes env.obs in {sorted(classes)}"
        )
    return classes[obs]


def get_algorithm_class(name: str) -> type[BaseAlgorithm]:
    """Resolve an algorithm class by its name (``"PPO"``, ``"TQC"``...).

    :param name: a name from :data:`SB3_ALGORITHMS` or :data:`CONTRIB_ALGORITHMS`.
    :return: the class.
    :raises ConfigError: (at ``algorithm.name``) for an unknown name, or a contrib algorithm
        when sb3-contrib is not installed.
    """
    if name in SB3_ALGORITHMS:
        module = importlib.import_module("stable_baselines3")
    elif name in CONTRIB_ALGORITHMS:
        try:
            module = importlib.import_module("sb3_contrib")
        except ImportError as exc:
            raise ConfigError(
                "algorithm.name",
                f"{name} comes from sb3-contrib, which is not installed: "
                "pip install 'unigen-sb3[contrib]'",
            ) from exc
    else:
        raise ConfigError(
            "algorithm.name",
            f"unknown algorithm {name!r}; accepted: {list(SB3_ALGORITHMS + CONTRIB_ALGORITHMS)}",
        )
    cls: type[BaseAlgorithm] = getattr(module, name)
    return cls


def is_off_policy(cls: type[BaseAlgorithm]) -> bool:
    """:return: True for replay-buffer algorithms (SAC, TD3, DQN, TQC...)."""
    return issubclass(cls, OffPolicyAlgorithm)


def default_policy(cls: type[BaseAlgorithm], obs: str) -> str:
    """Pick the policy for an observation mode: ``image`` -> CNN, ``dict`` -> multi-input.

    Recurrent algorithms get their LSTM variant; algorithms without a CNN policy (ARS,
    CrossQ) get ``MlpPolicy`` on the flattened image.

    :param cls: the algorithm class.
    :param obs: ``"image"`` or ``"dict"``.
    :return: the policy alias.
    :raises ConfigError: if the algorithm has no policy for ``obs``.
    """
    aliases = getattr(cls, "policy_aliases", {})
    wanted = {
        "image": ("CnnLstmPolicy", "CnnPolicy", "MlpPolicy"),
        "dict": ("MultiInputLstmPolicy", "MultiInputPolicy"),
    }[obs]
    for name in wanted:
        if name in aliases:
            return name
    raise ConfigError(
        "algorithm.policy",
        f"{cls.__name__} has no policy for env.obs={obs!r} (its policies: {sorted(aliases)}); "
        "use env.obs=image or set algorithm.policy",
    )


def algorithm_gamma(cls: type[BaseAlgorithm], kwargs: dict[str, Any]) -> float | None:
    """The discount the algorithm will use: ``kwargs["gamma"]``, else its default.

    :param cls: the algorithm class.
    :param kwargs: ``algorithm.kwargs``.
    :return: the discount as a float, or None when the algorithm has no ``gamma``.
    :raises ConfigError: (at ``algorithm.kwargs.gamma``) if the configured gamma is not a
        number in [0, 1].
    """
    if "gamma" in kwargs:
        value = kwargs["gamma"]
        if (
            isinstance(value, bool | np.bool_)
            or not isinstance(value, int | float | np.integer | np.floating)
            or not 0.0 <= float(value) <= 1.0
        ):
            raise ConfigError(
                "algorithm.kwargs.gamma",
                f"expected a number in [0, 1], got {value!r} ({type(value).__name__})"
                f"{_string_number_hint(value)}",
            )
        return float(value)
    param = inspect.signature(cls.__init__).parameters.get("gamma")
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return float(param.default)


def _is_number_string(value: Any) -> bool:
    """:return: True for a string that ``float()`` reads as a number (``"3e-4"``, ``"0.99"``)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _string_number_hint(value: Any) -> str:
    """:return: the YAML 1.1 hint for a number written as a string, else ``""``."""
    if _is_number_string(value):
        return " (YAML reads 3e-4 as a string: write 3.0e-4 or 0.0003)"
    return ""


def _accepts_str(param: inspect.Parameter) -> bool:
    """:return: True if the parameter's annotation admits a string (SAC's ``ent_coef``...)."""
    annotation = param.annotation
    if isinstance(annotation, str):  # an unevaluated annotation
        return re.search(r"\bstr\b", annotation) is not None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return str in typing.get_args(annotation)
    return annotation is str


def _check_no_number_strings(value: Any, path: str) -> None:
    """Refuse a number written as a string anywhere in ``value`` (nested dicts and lists).

    :raises ConfigError: at ``path`` (``.key`` / ``[i]`` appended for nested entries).
    """
    if _is_number_string(value):
        raise ConfigError(
            path,
            f"expected a number, got {value!r} (str){_string_number_hint(value)}",
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _check_no_number_strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_no_number_strings(item, f"{path}[{i}]")


# Value rules of the numeric constructor parameters SB3 and sb3-contrib check (with an assert
# or a crash once training starts): key -> (kind, low, low inclusive, high). "int" keys take
# an integer, "number" keys an int or float; every number anywhere in kwargs must be finite.
_KWARG_RULES: dict[str, tuple[str, float, bool, float | None]] = {
    "n_steps": ("int", 1, True, None),
    "batch_size": ("int", 1, True, None),
    "n_epochs": ("int", 1, True, None),
    "buffer_size": ("int", 1, True, None),
    "learning_starts": ("int", 0, True, None),
    "target_update_interval": ("int", 1, True, None),
    "policy_delay": ("int", 1, True, None),
    "n_critics": ("int", 1, True, None),
    "n_quantiles": ("int", 1, True, None),
    "top_quantiles_to_drop_per_net": ("int", 0, True, None),
    "n_delta": ("int", 1, True, None),
    "learning_rate": ("number", 0.0, False, None),
    "gamma": ("number", 0.0, True, 1.0),
    "gae_lambda": ("number", 0.0, True, 1.0),
    "tau": ("number", 0.0, True, 1.0),
    "vf_coef": ("number", 0.0, True, None),
    "max_grad_norm": ("number", 0.0, False, None),
    "exploration_fraction": ("number", 0.0, True, 1.0),
    "exploration_initial_eps": ("number", 0.0, True, 1.0),
    "exploration_final_eps": ("number", 0.0, True, 1.0),
    "target_policy_noise": ("number", 0.0, True, None),
    "target_noise_clip": ("number", 0.0, True, None),
    "clip_range": ("number", 0.0, False, None),
    "target_kl": ("number", 0.0, False, None),
}


def _finite_numbers(value: Any, path: str) -> None:
    """Refuse NaN or inf anywhere in a (nested) kwarg value."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(where, f"expected a finite number, got {item!r}")
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))


def _check_kwarg_values(name: str, kwargs: dict[str, Any]) -> None:
    """Refuse ``algorithm.kwargs`` values the algorithm would reject once built or training
    (``n_steps: -5``, ``learning_rate: .nan``...), before a run directory is written."""
    for key, value in kwargs.items():
        path = f"algorithm.kwargs.{key}"
        _finite_numbers(value, path)
        rule = _KWARG_RULES.get(key)
        if rule is None or value is None:
            continue
        kind, low, inclusive, high = rule
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(path, f"expected an integer, got {value!r} ({type(value).__name__})")
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            if isinstance(value, str) and key in ("learning_rate", "clip_range"):
                raise ConfigError(path, f"expected a number, got {value!r} (str)")
            if isinstance(value, str):
                continue  # e.g. SAC's ent_coef "auto"-like strings are checked by SB3
            raise ConfigError(path, f"expected a number, got {value!r} ({type(value).__name__})")
        too_low = value < low if inclusive else value <= low
        if too_low or (high is not None and value > high):
            accepted = f"{'>=' if inclusive else '>'} {low}" + (
                f" and <= {high}" if high is not None else ""
            )
            raise ConfigError(path, f"{value!r} is not accepted by {name}: expected {accepted}")
    if name in ("PPO", "MaskablePPO", "RecurrentPPO") and kwargs.get("batch_size") == 1:
        raise ConfigError(
            "algorithm.kwargs.batch_size",
            f"{name} normalizes advantages over a minibatch, which needs batch_size > 1",
        )


def check_algorithm(
    name: str, policy: str | None, kwargs: dict[str, Any], action: str, obs: str
) -> tuple[type[BaseAlgorithm], str | type[BasePolicy]]:
    """Check an algorithm config before anything is built.

    :param name: ``algorithm.name``.
    :param policy: ``algorithm.policy``: an alias of the algorithm (``"CnnPolicy"``...),
        ``"hybrid"`` (:func:`hybrid_policy`) or None (:func:`default_policy`).
    :param kwargs: ``algorithm.kwargs``; each must be a constructor parameter, and no value
        (nested ones included) may be a number written as a string (YAML 1.1 reads ``3e-4``
        as one), except for parameters that take a string themselves (SAC's ``ent_coef``).
    :param action: ``env.action``.
    :param obs: ``env.obs``.
    :return: ``(class, policy)``: the policy as an alias, or the hybrid policy class.
    :raises ConfigError: naming the dotted key of the problem.
    """
    cls = get_algorithm_class(name)
    allowed_actions = ALGORITHM_ACTIONS.get(name, ())
    if action not in allowed_actions:
        raise ConfigError(
            "env.action",
            f"{name} cannot use action={action!r}; it accepts {list(allowed_actions)}",
        )
    params = inspect.signature(cls.__init__).parameters
    reserved = {"self", "policy", "env", "seed", "tensorboard_log", "device", "verbose"}
    internal = {"_init_setup_model"}  # SB3's own switch; without it the model cannot learn
    accepted = sorted(set(params) - reserved - internal)
    for key, value in kwargs.items():
        if key in reserved:
            raise ConfigError(
                f"algorithm.kwargs.{key}",
                "is set by unigen-sb3 (policy: algorithm.policy, seed: seed, device: "
                "training.device, tensorboard_log: the run dir); remove it from kwargs",
            )
        if key in internal:
            raise ConfigError(
                f"algorithm.kwargs.{key}",
                "is internal to SB3 (false leaves the model unbuilt, so it cannot learn); "
                "remove it from kwargs",
            )
        if key not in params:
            raise ConfigError(
                f"algorithm.kwargs.{key}", f"{name} has no parameter {key!r}; accepted: {accepted}"
            )
        if not (isinstance(value, str) and _accepts_str(params[key])):
            _check_no_number_strings(value, f"algorithm.kwargs.{key}")
    _check_kwarg_values(name, kwargs)
    if policy == HYBRID_POLICY:
        return cls, hybrid_policy(name, action, obs)
    chosen = policy if policy is not None else default_policy(cls, obs)
    aliases = getattr(cls, "policy_aliases", {})
    if chosen not in aliases:
        raise ConfigError(
            "algorithm.policy", f"{name} has no policy {chosen!r}; accepted: {sorted(aliases)}"
        )
    return cls, chosen
