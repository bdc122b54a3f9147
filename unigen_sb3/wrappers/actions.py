"""Hybrid-action codecs and the wrappers that expose them to SB3.

The raw env takes ``Dict{"op": Discrete(K), "params": Box(-1, 1, (P,), float32)}``, which no
SB3 algorithm accepts. A codec turns that hybrid action into a flat space and back; the
wrapper is a thin :class:`gymnasium.ActionWrapper` around the codec.

``HybridToBoxWrapper``: ``Box(-1, 1, (K + P,), float32)``. The first ``K`` entries are op
scores and the op is their argmax (ties go to the lowest index); the last ``P`` entries are
the parameters, passed through (the env clips them to ``[-1, 1]``). Usable by every SB3
algorithm with Box actions (PPO, A2C, SAC, TD3, DDPG, TQC, ...).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

HybridAction = dict[str, Any]
"""A raw env action: ``{"op": int, "params": float32 array of shape (P,)}``."""


def hybrid_sizes(space: gym.Space[Any]) -> tuple[int, int]:
    """Return ``(K, P)`` of a hybrid action space, checking its structure.

    :raises TypeError: if ``space`` is not ``Dict{"op": Discrete, "params": Box}``.
    """
    if not isinstance(space, spaces.Dict) or set(space.spaces) != {"op", "params"}:
        raise TypeError(
            "expected a hybrid action space Dict{'op': Discrete(K), 'params': Box(P,)}, "
            f"got {space!r}"
        )
    op_space, param_space = space["op"], space["params"]
    if not isinstance(op_space, spaces.Discrete) or not isinstance(param_space, spaces.Box):
        raise TypeError(
            f"expected op: Discrete and params: Box, got op={op_space!r}, params={param_space!r}"
        )
    if len(param_space.shape) != 1:
        raise TypeError(f"params must be a 1-D Box, got shape {param_space.shape}")
    return int(op_space.n), int(param_space.shape[0])


class BoxCodec:
    """Hybrid action <-> ``Box(-1, 1, (K + P,))``.

    :param num_ops: K, the number of discrete ops.
    :param num_params: P, the number of continuous parameters.

    Example:
        >>> codec = BoxCodec(3, 2)
        >>> a = codec.encode({"op": 2, "params": np.array([0.5, -1.0], dtype=np.float32)})
        >>> a.tolist()
        [-1.0, -1.0, 1.0, 0.5, -1.0]
        >>> codec.decode(a)["op"]
        2
    """

    def __init__(self, num_ops: int, num_params: int) -> None:
        if num_ops < 1 or num_params < 0:
            raise ValueError(
                f"need num_ops >= 1 and num_params >= 0, got num_ops={num_ops}, "
                f"num_params={num_params}"
            )
        self.num_ops = int(num_ops)
        self.num_params = int(num_params)
        self.space = spaces.Box(-1.0, 1.0, (self.num_ops + self.num_params,), np.float32)

    def decode(self, action: np.ndarray) -> HybridAction:
        """Flat Box action -> hybrid action (op = argmax of the op scores)."""
        arr = np.asarray(action, dtype=np.float32)
        if arr.shape != self.space.shape:
            raise ValueError(
                f"action has shape {arr.shape}, expected {self.space.shape} "
                f"({self.num_ops} op scores + {self.num_params} params)"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action contains NaN or inf: {arr.tolist()}")
        return {
            "op": int(np.argmax(arr[: self.num_ops])),
            "params": arr[self.num_ops :].copy(),
        }

    def encode(self, action: HybridAction) -> np.ndarray:
        """Hybrid action -> flat Box action (op one-hot as +1 among -1)."""
        op = int(action["op"])
        if not 0 <= op < self.num_ops:
            raise ValueError(f"op={op} is out of range [0, {self.num_ops - 1}]")
        params = np.asarray(action["params"], dtype=np.float32).reshape(-1)
        if params.shape != (self.num_params,):
            raise ValueError(f"params has shape {params.shape}, expected ({self.num_params},)")
        out = np.full(self.space.shape, -1.0, dtype=np.float32)
        out[op] = 1.0
        out[self.num_ops :] = np.clip(params, -1.0, 1.0)
        return out


class HybridToBoxWrapper(gym.ActionWrapper[Any, np.ndarray, HybridAction]):
    """Expose a hybrid-action env through ``Box(-1, 1, (K + P,), float32)``.

    :param env: an env whose action space is ``Dict{"op": Discrete(K), "params": Box(P,)}``.

    Example:
        >>> from unigen_sb3 import make_unigen_env
        >>> env = make_unigen_env(action="box")
        >>> env.action_space.shape
        (14,)
    """

    def __init__(self, env: gym.Env[Any, HybridAction]) -> None:
        super().__init__(env)
        k, p = hybrid_sizes(env.action_space)
        self.codec = BoxCodec(k, p)
        self.action_space = self.codec.space

    def action(self, action: np.ndarray) -> HybridAction:
        """Decode the flat action for the hybrid env."""
        return self.codec.decode(action)

    def revert_action(self, action: HybridAction) -> np.ndarray:
        """Encode a hybrid action as this wrapper's flat action."""
        return self.codec.encode(action)
