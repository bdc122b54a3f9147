"""Two task specialists as one policy, routed by the task kind the agent observes.

:class:`TaskKindRouter` holds a model trained on generation only and one trained on editing
only, and gives each observation to the specialist of its task kind. The kind is read from
the observation itself, from the prompt encoding's ``is_edit`` entry (the first entry of
``attributes``, see :data:`~unigen_sb3.envs.tasks.ATTRIBUTE_NAMES`): what a user gives with
the task, never the privileged target or solution. In the ``image`` observation it is the
constant plane of channel ``attributes_0`` (see :mod:`unigen_sb3.wrappers.observation`).

Example:
    >>> router = TaskKindRouter(generate_model, edit_model)        # doctest: +SKIP
    >>> evaluate_unigen(router, {"task": "unified", "action": "discrete"})  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from unigen_sb3.envs.env import observation_space
from unigen_sb3.envs.tasks import ATTRIBUTE_NAMES
from unigen_sb3.wrappers.observation import ImageStacker

__all__ = ["IS_EDIT", "TaskKindRouter", "observed_is_edit"]

IS_EDIT = ATTRIBUTE_NAMES.index("is_edit")
"""Index of the task-kind flag in the ``attributes`` observation (1: edit, 0: generate)."""


def _image_decoder(space: spaces.Box) -> tuple[int, float, float]:
    """``(channel, low, span)`` of the ``is_edit`` plane of an ``image`` observation space."""
    if len(space.shape) != 3 or space.shape[1] != space.shape[2]:
        raise ValueError(f"expected a square (C, H, W) image observation space, got {space}")
    channels, size = int(space.shape[0]), int(space.shape[1])
    for reference in ("hidden", "observed"):
        stacker = ImageStacker(observation_space(size, reference))
        if stacker.channels == channels:
            channel = stacker.channel_names().index(f"attributes_{IS_EDIT}")
            low = float(stacker.lows["attributes"][IS_EDIT])
            return channel, low, float(stacker.spans["attributes"][IS_EDIT])
    raise ValueError(
        f"an image observation of {channels} channels is not a UniGen stack's (see "
        "unigen_sb3.wrappers.observation for the layouts)"
    )


def observed_is_edit(observation: Any, space: gym.Space[Any]) -> np.ndarray:
    """Which observations are of editing tasks, read from the observed prompt encoding.

    :param observation: a batch of observations (leading axis ``N``) of ``space``: a UniGen
        ``dict`` observation, or the stacked ``image`` one.
    :param space: the observation space of one observation.
    :return: ``(N,)`` bool.
    :raises ValueError: for a space that is no UniGen observation space.
    """
    if isinstance(space, spaces.Dict):
        if "attributes" not in space.spaces:
            raise ValueError(f"a dict observation space without 'attributes': {space}")
        return np.asarray(observation["attributes"])[:, IS_EDIT] > 0.5
    if not isinstance(space, spaces.Box):
        raise ValueError(f"expected a UniGen dict or image observation space, got {space}")
    channel, low, span = _image_decoder(space)
    level = np.asarray(observation)[:, channel, 0, 0].astype(np.float64)
    return (low + level / 255.0 * span) > 0.5


class TaskKindRouter:
    """A generation specialist and an editing specialist as one policy (SB3's ``predict``).

    :param generate_model: acts on generation tasks (anything with SB3's ``predict``).
    :param edit_model: acts on editing tasks; its observation and action spaces must be the
        generation specialist's.
    :raises ValueError: for specialists of different spaces.
    :raises TypeError: for an object without ``predict``.
    """

    def __init__(self, generate_model: Any, edit_model: Any) -> None:
        for name, model in (("generate_model", generate_model), ("edit_model", edit_model)):
            if not callable(getattr(model, "predict", None)):
                raise TypeError(f"{name} must have SB3's predict(); got {type(model).__name__}")
        for what in ("observation_space", "action_space"):
            a, b = getattr(generate_model, what, None), getattr(edit_model, what, None)
            if a is None or a != b:
                raise ValueError(f"the specialists must share their {what}: generate {a}, edit {b}")
        self.generate_model = generate_model
        self.edit_model = edit_model
        self.observation_space: gym.Space[Any] = generate_model.observation_space
        self.action_space: gym.Space[Any] = generate_model.action_space
        #: Observations given to each specialist so far: ``{"generate": n, "edit": n}``.
        self.routed = {"generate": 0, "edit": 0}

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """Actions for a batch of observations, each from the specialist of its task kind.

        :return: ``(actions, None)`` as SB3's ``predict`` (the specialists keep no state).
        """
        batched = observation if isinstance(observation, dict) else np.asarray(observation)
        is_edit = observed_is_edit(batched, self.observation_space)
        n = is_edit.shape[0]
        actions: np.ndarray | None = None
        for kind, model, rows in (
            ("generate", self.generate_model, np.flatnonzero(~is_edit)),
            ("edit", self.edit_model, np.flatnonzero(is_edit)),
        ):
            if rows.size == 0:
                continue
            part = (
                {k: np.asarray(v)[rows] for k, v in batched.items()}
                if isinstance(batched, dict)
                else batched[rows]
            )
            acts, _ = model.predict(part, deterministic=deterministic)
            acts = np.asarray(acts)
            if actions is None:
                actions = np.zeros((n, *acts.shape[1:]), dtype=acts.dtype)
            actions[rows] = acts
            self.routed[kind] += int(rows.size)
        assert actions is not None  # n >= 1: some rows went somewhere
        return actions, None
