"""The action encodings as one table, and the two builders derived from it.

:data:`ENCODINGS` maps each encoding name to its codec class, its wrapper class and the
options both accept. :data:`ACTION_ENCODINGS`, :func:`make_codec` (including its check of
the options) and :func:`wrap_hybrid_action` are all read from it, so an encoding is added by
adding one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import gymnasium as gym

from unigen_sb3.wrappers.actions.codecs import (
    ActionCodec,
    BoxCodec,
    DiscreteCodec,
    HybridAction,
    MultiDiscreteCodec,
)
from unigen_sb3.wrappers.actions.wrappers import (
    HybridToBoxWrapper,
    HybridToDiscreteWrapper,
    HybridToMultiDiscreteWrapper,
)

__all__ = ["ACTION_ENCODINGS", "ENCODINGS", "Encoding", "make_codec", "wrap_hybrid_action"]


class Encoding(NamedTuple):
    """One row of :data:`ENCODINGS`."""

    #: Called as ``codec(K, P, **options)``.
    codec: Callable[..., ActionCodec]
    #: Called as ``wrapper(env, **options)``.
    wrapper: Callable[..., gym.Env[Any, Any]]
    #: The keyword options the codec and the wrapper accept (``bins``, ``library``, ...).
    options: tuple[str, ...]


ENCODINGS: dict[str, Encoding] = {
    "box": Encoding(BoxCodec, HybridToBoxWrapper, ()),
    "multidiscrete": Encoding(MultiDiscreteCodec, HybridToMultiDiscreteWrapper, ("bins",)),
    "discrete": Encoding(DiscreteCodec, HybridToDiscreteWrapper, ("library", "op_names")),
}
"""Encoding name -> ``(codec class, wrapper class, accepted option names)``."""

ACTION_ENCODINGS: tuple[str, ...] = tuple(ENCODINGS)
"""Accepted values of ``make_unigen_env(action=...)`` and :func:`make_codec`."""


def _check_encoding(encoding: str, options: Mapping[str, Any]) -> Encoding:
    """The row of ``encoding``, after checking the name and the option names."""
    if encoding not in ENCODINGS:
        raise ValueError(f"action encoding {encoding!r} is not one of {ACTION_ENCODINGS}")
    row = ENCODINGS[encoding]
    unknown = sorted(set(options) - set(row.options))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for the {encoding!r} action encoding; "
            f"accepted: {list(row.options) or 'none'}"
        )
    return row


def make_codec(encoding: str, num_ops: int, num_params: int, **options: Any) -> ActionCodec:
    """Build the codec for an action encoding.

    :param encoding: one of :data:`ACTION_ENCODINGS`.
    :param num_ops: K, the number of discrete ops.
    :param num_params: P, the number of continuous parameters.
    :param options: ``bins`` for ``multidiscrete``; ``library``, ``op_names`` for
        ``discrete``; none for ``box``.
    :raises ValueError: for an unknown encoding, an option it does not take, or a bad value.

    Example:
        >>> make_codec("multidiscrete", 6, 8, bins=5).space.nvec.tolist()
        [6, 5, 5, 5, 5, 5, 5, 5, 5]
    """
    return _check_encoding(encoding, options).codec(num_ops, num_params, **options)


def wrap_hybrid_action(
    env: gym.Env[Any, HybridAction], encoding: str, **options: Any
) -> gym.Env[Any, Any]:
    """Wrap a hybrid-action env with the wrapper of ``encoding`` (see :func:`make_codec`).

    :raises ValueError: for an unknown encoding or an option it does not take.
    """
    return _check_encoding(encoding, options).wrapper(env, **options)
