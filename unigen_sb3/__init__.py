"""unigen-sb3: RL on image generation and editing under one unified reward, for Stable-Baselines3.

Example:
    >>> from stable_baselines3 import PPO
    >>> from unigen_sb3 import make_unigen_env
    >>> model = PPO("CnnPolicy", make_unigen_env(), n_steps=64, batch_size=32)
"""

from unigen_sb3.envs import ENV_IDS, UniGenEnv, UniGenVecEnv, register_envs
from unigen_sb3.make import make_unigen_env, make_unigen_vec_env
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, RewardUnifier
from unigen_sb3.spec import UniGenSpec, spec_of
from unigen_sb3.wrappers import (
    ACTION_ENCODINGS,
    HybridToBoxWrapper,
    HybridToDiscreteWrapper,
    HybridToMultiDiscreteWrapper,
    ImageObsWrapper,
    UnifiedRewardWrapper,
    VecUnifiedReward,
    make_codec,
)

__version__ = "0.1.0"

register_envs()

# Callbacks, evaluation and configs import the env stack above; import them after it.
from unigen_sb3.callbacks import (  # noqa: E402
    ImageLogCallback,
    RewardComponentCallback,
    UniGenEvalCallback,
)
from unigen_sb3.configs import ConfigError, ExperimentConfig, load_config  # noqa: E402
from unigen_sb3.evaluation import evaluate_unigen, stability_summary  # noqa: E402
from unigen_sb3.pretrained import evaluate_pretrained, load_pretrained  # noqa: E402

__all__ = [
    "ACTION_ENCODINGS",
    "DEFAULT_WEIGHTS",
    "ENV_IDS",
    "ConfigError",
    "ExperimentConfig",
    "HybridToBoxWrapper",
    "HybridToDiscreteWrapper",
    "HybridToMultiDiscreteWrapper",
    "ImageLogCallback",
    "ImageObsWrapper",
    "RewardComponentCallback",
    "RewardUnifier",
    "UniGenEnv",
    "UniGenEvalCallback",
    "UniGenSpec",
    "UniGenVecEnv",
    "UnifiedRewardWrapper",
    "VecUnifiedReward",
    "evaluate_pretrained",
    "evaluate_unigen",
    "load_config",
    "load_pretrained",
    "make_codec",
    "make_unigen_env",
    "make_unigen_vec_env",
    "spec_of",
    "stability_summary",
]
