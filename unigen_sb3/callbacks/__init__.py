"""SB3 callbacks: per-component reward logging, image grids, evaluation."""

from unigen_sb3.callbacks.evaluation import UniGenEvalCallback
from unigen_sb3.callbacks.images import ImageLogCallback
from unigen_sb3.callbacks.reward_components import RewardComponentCallback

__all__ = ["ImageLogCallback", "RewardComponentCallback", "UniGenEvalCallback"]
