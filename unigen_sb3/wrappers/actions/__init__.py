"""Hybrid-action codecs and the wrappers that expose them to SB3.

The raw env takes ``Dict{"op": Discrete(K), "params": Box(-1, 1, (P,), float32)}``, which no
SB3 algorithm accepts. A codec turns that hybrid action into a flat space and back; the
wrapper is a thin :class:`gymnasium.ActionWrapper` around the codec. Every codec has the same
interface (:class:`ActionCodec`): ``space``, ``encode(hybrid)``, ``decode(flat)`` and
``action_masks(op_mask)``, the env's op-validity mask translated into the codec's layout.

=================  ===============================================  ==========================
encoding           space                                            algorithms
=================  ===============================================  ==========================
``box``            ``Box(-1, 1, (K + P,))``: K op scores (op =      PPO, A2C, SAC, TD3, DDPG,
                   argmax, ties to the lowest index) + P params     TQC, CrossQ, TRPO, ARS,
                                                                    RecurrentPPO
``multidiscrete``  ``MultiDiscrete([K, b_0, ..., b_{P-1}])``: the   PPO, A2C, MaskablePPO
                   op, then each parameter's bin index
``discrete``       ``Discrete(L)``: entry ``i`` of a library of     PPO, A2C, DQN, QR-DQN,
                   ``(op, parameter preset)`` actions               MaskablePPO
=================  ===============================================  ==========================

The package is split along that seam:

- :mod:`~unigen_sb3.wrappers.actions.codecs`: the :class:`ActionCodec` interface, the three
  codecs, the default ``discrete`` library and the validation helpers they share (the
  parameter grid, the library and the mask layouts are described there);
- :mod:`~unigen_sb3.wrappers.actions.wrappers`: the gymnasium wrappers around the codecs;
- :mod:`~unigen_sb3.wrappers.actions.encodings`: the table :data:`ENCODINGS` (encoding ->
  codec, wrapper, accepted options) and what is derived from it: :data:`ACTION_ENCODINGS`,
  :func:`make_codec` and :func:`wrap_hybrid_action`.

Every name is importable from ``unigen_sb3.wrappers.actions`` itself.
"""

from unigen_sb3.wrappers.actions.codecs import (
    DEFAULT_BINS,
    ActionCodec,
    BoxCodec,
    DiscreteCodec,
    HybridAction,
    LibraryEntry,
    MultiDiscreteCodec,
    default_action_library,
    hybrid_sizes,
)
from unigen_sb3.wrappers.actions.encodings import (
    ACTION_ENCODINGS,
    ENCODINGS,
    Encoding,
    make_codec,
    wrap_hybrid_action,
)
from unigen_sb3.wrappers.actions.wrappers import (
    HybridToBoxWrapper,
    HybridToDiscreteWrapper,
    HybridToMultiDiscreteWrapper,
)

__all__ = [
    "ACTION_ENCODINGS",
    "DEFAULT_BINS",
    "ENCODINGS",
    "ActionCodec",
    "BoxCodec",
    "DiscreteCodec",
    "Encoding",
    "HybridAction",
    "HybridToBoxWrapper",
    "HybridToDiscreteWrapper",
    "HybridToMultiDiscreteWrapper",
    "LibraryEntry",
    "MultiDiscreteCodec",
    "default_action_library",
    "hybrid_sizes",
    "make_codec",
    "wrap_hybrid_action",
]
