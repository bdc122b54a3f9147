"""unigen-sb3: RL on image generation and editing under one unified reward, for Stable-Baselines3.

Example:
    >>> from stable_baselines3 import PPO
    >>> from unigen_sb3 import make_unigen_env
    >>> model = PPO("CnnPolicy", make_unigen_env(), n_steps=64, batch_size=32)
"""

from unigen_sb3.envs import ENV_IDS, UniGenEnv, make_unigen_env, register_envs
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, RewardUnifier
from unigen_sb3.wrappers import (
    HybridToBoxWrapper,
    ImageObsWrapper,
    UnifiedRewardWrapper,
    VecUnifiedReward,
)

__version__ = "0.1.0"

register_envs()

__all__ = [
    "DEFAULT_WEIGHTS",
    "ENV_IDS",
    "HybridToBoxWrapper",
    "ImageObsWrapper",
    "RewardUnifier",
    "UniGenEnv",
    "UnifiedRewardWrapper",
    "VecUnifiedReward",
    "make_unigen_env",
]
