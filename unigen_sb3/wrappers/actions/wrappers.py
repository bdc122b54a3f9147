"""The gymnasium action wrappers that expose a hybrid-action env through one codec.

Each wrapper is a thin :class:`gymnasium.ActionWrapper` around a codec of
:mod:`unigen_sb3.wrappers.actions.codecs`: ``action`` decodes the flat action for the hybrid
env, ``revert_action`` encodes a hybrid one. The ``multidiscrete`` and ``discrete`` wrappers
also expose ``action_masks()`` in their codec's layout, which MaskablePPO finds by name; the
``box`` wrapper does not (SB3 has no masking for Box actions). Which wrapper serves which
encoding is the table :data:`~unigen_sb3.wrappers.actions.encodings.ENCODINGS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from unigen_sb3.wrappers.actions.codecs import (
    DEFAULT_BINS,
    ActionCodec,
    BoxCodec,
    DiscreteCodec,
    HybridAction,
    LibraryEntry,
    MultiDiscreteCodec,
    hybrid_sizes,
)

__all__ = ["HybridToBoxWrapper", "HybridToDiscreteWrapper", "HybridToMultiDiscreteWrapper"]


class _HybridCodecWrapper(gym.ActionWrapper[Any, Any, HybridAction]):
    """An action wrapper around a codec; exposes ``action_masks()`` in the codec's layout."""

    codec: ActionCodec
    #: The codec class a subclass wraps, called as ``codec_class(K, P, **options)``.
    codec_class: ClassVar[Callable[..., ActionCodec]]

    def __init__(self, env: gym.Env[Any, HybridAction], **options: Any) -> None:
        super().__init__(env)
        k, p = hybrid_sizes(env.action_space)
        self.codec = self.codec_class(k, p, **options)
        self.action_space = self.codec.space

    def action(self, action: Any) -> HybridAction:
        """Decode the flat action for the hybrid env."""
        return self.codec.decode(action)

    def revert_action(self, action: HybridAction) -> np.ndarray:
        """Encode a hybrid action as this wrapper's flat action."""
        return self.codec.encode(action)

    def action_masks(self) -> np.ndarray:
        """The wrapped env's op-validity mask in this wrapper's layout (all valid without one).

        MaskablePPO finds this method by name through outer wrappers and ``env_method``.
        """
        try:
            op_mask = self.env.get_wrapper_attr("action_masks")()
        except AttributeError:
            op_mask = np.ones(self.codec.num_ops, dtype=bool)
        return self.codec.action_masks(op_mask)


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


class HybridToMultiDiscreteWrapper(_HybridCodecWrapper):
    """Expose a hybrid-action env through ``MultiDiscrete([K, b_0, ..., b_{P-1}])``.

    For PPO, A2C and MaskablePPO (``action_masks()`` gives the flat mask layout).

    :param env: an env whose action space is ``Dict{"op": Discrete(K), "params": Box(P,)}``.
    :param bins: bins per parameter (one int, or one per parameter), see
        :class:`MultiDiscreteCodec`.

    Example:
        >>> from unigen_sb3 import make_unigen_env
        >>> env = make_unigen_env(action="multidiscrete", action_options={"bins": 5})
        >>> env.action_space.nvec.tolist()
        [6, 5, 5, 5, 5, 5, 5, 5, 5]
    """

    codec: MultiDiscreteCodec
    codec_class = MultiDiscreteCodec

    def __init__(
        self, env: gym.Env[Any, HybridAction], bins: int | Sequence[int] = DEFAULT_BINS
    ) -> None:
        super().__init__(env, bins=bins)


class HybridToDiscreteWrapper(_HybridCodecWrapper):
    """Expose a hybrid-action env through ``Discrete(L)``, a library of ``(op, preset)`` actions.

    For DQN, QR-DQN, PPO, A2C and MaskablePPO (``action_masks()`` marks entries whose op is
    invalid for the current task).

    :param env: an env whose action space is ``Dict{"op": Discrete(K), "params": Box(P,)}``.
    :param library: the actions, see :class:`DiscreteCodec`; ``None``: the default library.
    :param op_names: op names for ``library`` (default: the UniGen ops).

    Example:
        >>> from unigen_sb3 import make_unigen_env
        >>> env = make_unigen_env(action="discrete")
        >>> int(env.action_space.n)
        463
    """

    codec: DiscreteCodec
    codec_class = DiscreteCodec

    def __init__(
        self,
        env: gym.Env[Any, HybridAction],
        library: Sequence[LibraryEntry | Mapping[str, Any]] | None = None,
        op_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(env, library=library, op_names=op_names)
