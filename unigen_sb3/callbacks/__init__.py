"""SB3 callbacks: per-component reward logging, image grids, evaluation, hybrid entropies,
progress lines."""

from unigen_sb3.callbacks.evaluation import UniGenEvalCallback
from unigen_sb3.callbacks.hybrid_entropy import HybridEntropyCallback
from unigen_sb3.callbacks.images import ImageLogCallback
from unigen_sb3.callbacks.progress import ProgressLogCallback
from unigen_sb3.callbacks.reward_components import RewardComponentCallback

__all__ = [
    "HybridEntropyCallback",
    "ImageLogCallback",
    "ProgressLogCallback",
    "RewardComponentCallback",
    "UniGenEvalCallback",
]
