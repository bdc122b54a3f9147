"""Wrappers: hybrid-action codecs, reward unification, observation stacking."""

from unigen_sb3.wrappers.actions import BoxCodec, HybridToBoxWrapper
from unigen_sb3.wrappers.observation import ImageObsWrapper, ImageStacker
from unigen_sb3.wrappers.reward import (
    RewardUnificationCore,
    UnifiedRewardWrapper,
    VecUnifiedReward,
)

__all__ = [
    "BoxCodec",
    "HybridToBoxWrapper",
    "ImageObsWrapper",
    "ImageStacker",
    "RewardUnificationCore",
    "UnifiedRewardWrapper",
    "VecUnifiedReward",
]
