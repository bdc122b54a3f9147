"""``make_unigen_env``: the SB3-ready UniGen stack in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS
from unigen_sb3.wrappers.actions import ACTION_ENCODINGS, wrap_hybrid_action
from unigen_sb3.wrappers.observation import ImageObsWrapper
from unigen_sb3.wrappers.reward import UnifiedRewardWrapper

OBS_MODES = ("image", "dict")
"""Accepted values of ``make_unigen_env(obs=...)``: ``image`` for ``CnnPolicy``, ``dict`` for
``MultiInputPolicy``."""


def make_unigen_env(
    task: str = "unified",
    action: str = "box",
    obs: str = "image",
    seed: int | None = None,
    w_quality: float = DEFAULT_WEIGHTS["quality"],
    w_edit: float = DEFAULT_WEIGHTS["edit"],
    w_consistency: float = DEFAULT_WEIGHTS["consistency"],
    *,
    normalization: str = "bounded",
    shaping: PotentialShaping | None = None,
    action_options: Mapping[str, Any] | None = None,
    **env_kwargs: Any,
) -> gym.Env[Any, Any]:
    """Build the UniGen env stack that off-the-shelf SB3 trains on.

    ``UniGenEnv`` (vector reward, hybrid actions, Dict observation)
    -> :class:`~unigen_sb3.wrappers.reward.UnifiedRewardWrapper` (float reward
    ``w_quality*Q + w_edit*E + w_consistency*C`` in [0, 1])
    -> the action encoding -> the observation mode.

    :param task: ``"generate"``, ``"edit"`` or ``"unified"``.
    :param action: the action encoding, one of :data:`ACTION_ENCODINGS`: ``"box"`` (every
        algorithm with Box actions), ``"multidiscrete"`` (PPO, A2C, MaskablePPO) or
        ``"discrete"`` (DQN, QR-DQN, PPO, A2C, MaskablePPO); see
        :mod:`unigen_sb3.wrappers.actions` and ``docs/can_i_use.md``.
    :param obs: ``"image"`` (one uint8 (C,H,W) image for ``CnnPolicy``) or ``"dict"`` (the
        Dict observation for ``MultiInputPolicy``).
    :param seed: seeds the env's task sequence (see :class:`UniGenEnv`).
    :param w_quality: weight of R_quality.
    :param w_edit: weight of R_edit.
    :param w_consistency: weight of R_consistency (the weights sum to 1).
    :param normalization: ``"bounded"`` or ``"running"`` component normalization.
    :param shaping: optional potential-based shaping (its gamma must be the algorithm's).
    :param action_options: options of the action encoding: ``{"bins": ...}`` for
        ``multidiscrete``, ``{"library": ..., "op_names": ...}`` for ``discrete``, none for
        ``box`` (see :func:`~unigen_sb3.wrappers.actions.make_codec`).
    :param env_kwargs: passed to :class:`UniGenEnv` (``size``, ``horizon``, ``device``...).
    :return: the wrapped env.

    Example:
        >>> from stable_baselines3 import PPO
        >>> model = PPO("CnnPolicy", make_unigen_env(), n_steps=64, batch_size=32)
    """
    if action not in ACTION_ENCODINGS:
        raise ValueError(f"action={action!r} is not one of {ACTION_ENCODINGS}")
    if action_options is not None and not isinstance(action_options, Mapping):
        raise TypeError(f"action_options must be a mapping, got {action_options!r}")
    if obs not in OBS_MODES:
        raise ValueError(f"obs={obs!r} is not one of {OBS_MODES}")
    env: gym.Env[Any, Any] = UniGenEnv(task, seed=seed, **env_kwargs)
    env = UnifiedRewardWrapper(
        env,
        w_quality,
        w_edit,
        w_consistency,
        normalization=normalization,  # type: ignore[arg-type]
        shaping=shaping,
    )
    # The action wrapper sits outside the reward wrapper, so its action_masks() reads the raw
    # env's op mask through it, and outside-in lookups (MaskablePPO) reach it first.
    env = wrap_hybrid_action(env, action, **dict(action_options or {}))
    if obs == "image":
        env = ImageObsWrapper(env)
    return env
