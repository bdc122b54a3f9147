"""The reward library: metrics, the three components, normalization, unification, shaping."""

from unigen_sb3.rewards.components import (
    ComponentResult,
    RewardComputer,
    TaskBatch,
)
from unigen_sb3.rewards.metrics import (
    changed_mask,
    color_accuracy,
    mask_iou,
    psnr,
    rgb_to_lab,
    ssim,
    ssim_map,
)
from unigen_sb3.rewards.names import COMPONENT_NAMES, COMPONENT_RANGES, SUB_METRICS
from unigen_sb3.rewards.normalizers import (
    NORMALIZATIONS,
    BoundedNormalizer,
    RunningNormalizer,
    make_normalizer,
)
from unigen_sb3.rewards.perceptual import (
    PerceptualDistance,
    RealismScorer,
    frechet_distance,
    kernel_inception_distance,
)
from unigen_sb3.rewards.shaping import PotentialShaping, check_shaping_gamma
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS, RewardUnifier, UnifiedReward

__all__ = [
    "COMPONENT_NAMES",
    "COMPONENT_RANGES",
    "DEFAULT_WEIGHTS",
    "NORMALIZATIONS",
    "SUB_METRICS",
    "BoundedNormalizer",
    "ComponentResult",
    "PerceptualDistance",
    "PotentialShaping",
    "RealismScorer",
    "RewardComputer",
    "RewardUnifier",
    "RunningNormalizer",
    "TaskBatch",
    "UnifiedReward",
    "changed_mask",
    "check_shaping_gamma",
    "color_accuracy",
    "frechet_distance",
    "kernel_inception_distance",
    "make_normalizer",
    "mask_iou",
    "psnr",
    "rgb_to_lab",
    "ssim",
    "ssim_map",
]
