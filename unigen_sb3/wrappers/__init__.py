"""Wrappers: hybrid-action codecs, reward unification, observation stacking."""

from unigen_sb3.wrappers.actions import (
    ACTION_ENCODINGS,
    DEFAULT_BINS,
    ActionCodec,
    BoxCodec,
    DiscreteCodec,
    HybridToBoxWrapper,
    HybridToDiscreteWrapper,
    HybridToMultiDiscreteWrapper,
    MultiDiscreteCodec,
    default_action_library,
    make_codec,
    wrap_hybrid_action,
)
from unigen_sb3.wrappers.observation import ImageObsWrapper, ImageStacker
from unigen_sb3.wrappers.reward import (
    RewardUnificationCore,
    UnifiedRewardWrapper,
    VecUnifiedReward,
)
from unigen_sb3.wrappers.vec import VecHybridAction, VecImageObs

__all__ = [
    "ACTION_ENCODINGS",
    "DEFAULT_BINS",
    "ActionCodec",
    "BoxCodec",
    "DiscreteCodec",
    "HybridToBoxWrapper",
    "HybridToDiscreteWrapper",
    "HybridToMultiDiscreteWrapper",
    "ImageObsWrapper",
    "ImageStacker",
    "MultiDiscreteCodec",
    "RewardUnificationCore",
    "UnifiedRewardWrapper",
    "VecHybridAction",
    "VecImageObs",
    "VecUnifiedReward",
    "default_action_library",
    "make_codec",
    "wrap_hybrid_action",
]
