"""Algorithms by name: SB3 and sb3-contrib classes, their default policy and kwargs check."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from unigen_sb3.configs.schema import ConfigError

__all__ = [
    "ALGORITHM_ACTIONS",
    "CONTRIB_ALGORITHMS",
    "SB3_ALGORITHMS",
    "algorithm_gamma",
    "check_algorithm",
    "default_policy",
    "get_algorithm_class",
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
    """:return: the discount the algorithm will use (kwargs, else its default), or None."""
    if "gamma" in kwargs:
        return float(kwargs["gamma"])
    param = inspect.signature(cls.__init__).parameters.get("gamma")
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return float(param.default)


def check_algorithm(
    name: str, policy: str | None, kwargs: dict[str, Any], action: str, obs: str
) -> tuple[type[BaseAlgorithm], str]:
    """Check an algorithm config before anything is built.

    :param name: ``algorithm.name``.
    :param policy: ``algorithm.policy`` (None = :func:`default_policy`).
    :param kwargs: ``algorithm.kwargs``; each must be a constructor parameter.
    :param action: ``env.action``.
    :param obs: ``env.obs``.
    :return: ``(class, policy)``.
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
    accepted = sorted(set(params) - reserved)
    for key in kwargs:
        if key in reserved:
            raise ConfigError(
                f"algorithm.kwargs.{key}",
                "is set by unigen-sb3 (policy: algorithm.policy, seed: seed, device: "
                "training.device, tensorboard_log: the run dir); remove it from kwargs",
            )
        if key not in params:
            raise ConfigError(
                f"algorithm.kwargs.{key}", f"{name} has no parameter {key!r}; accepted: {accepted}"
            )
    chosen = policy if policy is not None else default_policy(cls, obs)
    aliases = getattr(cls, "policy_aliases", {})
    if chosen not in aliases:
        raise ConfigError(
            "algorithm.policy", f"{name} has no policy {chosen!r}; accepted: {sorted(aliases)}"
        )
    return cls, chosen
