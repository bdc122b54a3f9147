"""SB3 ``VecEnvWrapper`` forms of the action and observation wrappers, for batched VecEnvs.

They call the same cores as the gymnasium wrappers (a codec of
:mod:`unigen_sb3.wrappers.actions`, the :class:`~unigen_sb3.wrappers.observation.ImageStacker`),
on the whole batch:

- :class:`VecHybridAction`: flat actions ``(N, ...)`` in the codec's space -> the raw hybrid
  batch ``{"op": (N,), "params": (N, P)}``; ``action_masks()`` in the codec's layout.
- :class:`VecImageObs`: batched Dict observations -> one uint8 ``(N, C, H, W)`` image batch,
  including each ``info["terminal_observation"]`` (SB3 bootstraps truncated episodes from it).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from unigen_sb3.wrappers.actions.codecs import hybrid_sizes
from unigen_sb3.wrappers.observation import ImageStacker

__all__ = ["VecHybridAction", "VecImageObs"]

_MASKS = "action_masks"


class VecHybridAction(VecEnvWrapper):
    """Expose a hybrid-action VecEnv through a codec's flat action space.

    :param venv: a VecEnv whose action space is ``Dict{"op": Discrete(K), "params": Box(P,)}``
        and whose ``step_async`` takes ``{"op": (N,), "params": (N, P)}`` (as
        :class:`~unigen_sb3.envs.vec_env.UniGenVecEnv` does).
    :param codec: any object with ``space`` (the flat space) and ``decode(flat_row) ->
        {"op", "params"}``; with ``decode_batch(flat_rows) -> (ops, params)`` the whole batch
        is decoded in one call (the codecs of :mod:`unigen_sb3.wrappers.actions` have it);
        with ``action_masks(op_mask)``, masks are given in its layout.

    Example:
        >>> from unigen_sb3.envs.vec_env import UniGenVecEnv  # doctest: +SKIP
        >>> from unigen_sb3.wrappers.actions import make_codec  # doctest: +SKIP
        >>> venv = VecHybridAction(UniGenVecEnv(4), make_codec("box", 6, 8))  # doctest: +SKIP
    """

    def __init__(self, venv: VecEnv, codec: Any) -> None:
        missing = [name for name in ("space", "decode") if not hasattr(codec, name)]
        if missing:
            raise TypeError(
                f"codec {type(codec).__name__} lacks {missing}; a codec needs `space` and "
                "`decode(flat_action) -> {'op', 'params'}`"
            )
        self.num_ops, self.num_params = hybrid_sizes(venv.action_space)
        self.codec = codec
        super().__init__(venv, action_space=codec.space)

    def step_async(self, actions: Any) -> None:
        """Decode the flat actions (one ``decode_batch`` call when the codec has it, else row
        by row) and pass the hybrid batch on."""
        arr = np.asarray(actions)
        if arr.ndim == 0 or arr.shape[0] != self.num_envs:
            raise ValueError(
                f"expected a batch of {self.num_envs} actions (leading axis), got shape {arr.shape}"
            )
        decode_batch = getattr(self.codec, "decode_batch", None)
        if decode_batch is not None:
            ops, params = decode_batch(arr)
        else:
            decoded = [self.codec.decode(row) for row in arr]
            ops = np.array([int(d["op"]) for d in decoded], dtype=np.int64)
            params = np.stack([np.asarray(d["params"], dtype=np.float32) for d in decoded])
        self.venv.step_async({"op": ops, "params": params})  # type: ignore[arg-type]

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self.reset_infos = self.venv.reset_infos
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        out = self.venv.step_wait()
        self.reset_infos = self.venv.reset_infos
        return out

    def action_masks(self) -> np.ndarray:
        """(N, ...) masks in the codec's layout (the op masks when the codec has none).

        MaskablePPO asks ``env_method("action_masks")``; :meth:`env_method` answers it here,
        so the masks fit this wrapper's action space, not the raw env's.
        """
        op_masks = np.stack(self.venv.env_method(_MASKS)).astype(bool)
        translate = getattr(self.codec, _MASKS, None)
        if translate is None:
            return op_masks
        return np.asarray(translate(op_masks), dtype=bool)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        if method_name == _MASKS:
            masks = self.action_masks()
            return [masks[i] for i in self._get_indices(indices)]
        return self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == _MASKS:
            # As DummyVecEnv gives each env's own bound method: env i's masks, in this layout.
            return [functools.partial(self._env_masks, i) for i in self._get_indices(indices)]
        return self.venv.get_attr(attr_name, indices)

    def _env_masks(self, i: int) -> np.ndarray:
        """Env ``i``'s masks in the codec's layout (one row of :meth:`action_masks`)."""
        return self.action_masks()[i]


class VecImageObs(VecEnvWrapper):
    """Stack the UniGen Dict observations of a VecEnv into uint8 ``(N, C, H, W)`` images.

    The channel layout is :class:`~unigen_sb3.wrappers.observation.ImageStacker`'s (the same
    as :class:`~unigen_sb3.wrappers.observation.ImageObsWrapper`), for ``CnnPolicy``.

    :param venv: a VecEnv with the UniGen Dict observation space.
    """

    def __init__(self, venv: VecEnv) -> None:
        self.stacker = ImageStacker(venv.observation_space)
        super().__init__(venv, observation_space=self.stacker.space)

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self.reset_infos = self.venv.reset_infos
        return self.stacker(obs)  # type: ignore[arg-type]

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.reset_infos = self.venv.reset_infos
        # The terminal observations of a step are stacked in one call: an auto-reset step
        # can end dozens of episodes at once, and one call per episode costs more than it.
        ended = [info for info in infos if isinstance(info.get("terminal_observation"), dict)]
        if ended:
            terminals = [info["terminal_observation"] for info in ended]
            batch = {key: np.stack([t[key] for t in terminals]) for key in terminals[0]}
            for info, image in zip(ended, self.stacker(batch), strict=True):
                info["terminal_observation"] = image.copy()
        return self.stacker(obs), rewards, dones, infos  # type: ignore[arg-type]
