"""Evaluation-only metrics of a rollout: per-episode image metrics and set-level distances.

The reward's own components and sub-metrics are not recomputed here: they are what the env
computed (see :mod:`unigen_sb3.evaluation.rollout`). These are the metrics evaluation adds:

- ``lpips``: the env backend's perceptual distance between final canvas and target.
- ``ssim`` / ``psnr``: final canvas vs target; PSNR of identical images is infinite and is
  capped at :data:`PSNR_CAP_DB`.
- ``region_ssim``: SSIM inside the task mask; ``mask_iou``: IoU of the pixels the episode
  changed (final vs start) with the mask; ``attribute_accuracy``: fraction of mask pixels
  within Delta-E 10 of the target colour.
- ``frechet_distance`` / ``kid_*``: Fréchet distance and kernel distance between the
  perceptual embeddings of the final canvases and of the targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unigen_sb3.evaluation.rollout import EpisodeRollout
from unigen_sb3.rewards.metrics import changed_mask, color_accuracy, mask_iou, psnr, ssim
from unigen_sb3.rewards.normalizers import COMPONENT_NAMES
from unigen_sb3.rewards.perceptual import frechet_distance, kernel_inception_distance

__all__ = [
    "EVAL_METRICS",
    "IMAGE_METRICS",
    "KID_MAX_SUBSET",
    "KID_SUBSETS",
    "PSNR_CAP_DB",
    "SET_METRICS",
    "episode_metrics",
    "kid_subset_size",
    "set_metrics",
]

PSNR_CAP_DB = 100.0
"""PSNR of identical images is infinite; reports cap it here."""
IMAGE_METRICS: tuple[str, ...] = (
    "lpips",
    "ssim",
    "psnr",
    "region_ssim",
    "mask_iou",
    "attribute_accuracy",
)
"""The evaluation-only per-episode image metrics."""
EVAL_METRICS: tuple[str, ...] = (
    "reward_total",
    *(f"reward_{n}" for n in COMPONENT_NAMES),
    *IMAGE_METRICS,
    "episode_length",
)
"""The per-episode metrics of a report, each summarized as ``{"mean", "std"}``."""
SET_METRICS: tuple[str, ...] = ("frechet_distance", "kid_mean", "kid_std")
#: KID's subsets per evaluation, and the most rows per subset (:func:`kid_subset_size`).
KID_SUBSETS = 100
KID_MAX_SUBSET = 1000
_CHUNK = 64  # episodes per metric batch (bounds memory for large evaluations)


def episode_metrics(rollout: EpisodeRollout, *, psnr_cap: float = PSNR_CAP_DB) -> dict[str, Any]:
    """Per-episode metrics of a rollout, each ``(N,)`` float64, keyed as in :data:`EVAL_METRICS`.

    :param rollout: the output of :func:`~unigen_sb3.envs.policies.rollout_episodes`.
    :param psnr_cap: the value (dB) that replaces infinite PSNR (identical images).
    :return: metric name -> values.
    """
    perceptual = rollout.rewards.perceptual
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("lpips", "ssim", "psnr", "region_ssim", "mask_iou", "attribute_accuracy")
    }
    n = rollout.final.shape[0]
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        final, target = rollout.final[sl], rollout.target[sl]
        start, mask = rollout.start[sl], rollout.mask[sl]
        changed = changed_mask(start, final, threshold=rollout.rewards.change_threshold)
        values = {
            "lpips": perceptual.distance(final, target),
            "ssim": ssim(final, target),
            "psnr": psnr(final, target).clamp(max=psnr_cap),
            "region_ssim": ssim(final, target, mask=mask),
            "mask_iou": mask_iou(changed, mask),
            "attribute_accuracy": color_accuracy(
                final, target, mask, tol=rollout.rewards.color_tol
            ),
        }
        for k, v in values.items():
            parts[k].append(v.detach().double().cpu().numpy())
    out: dict[str, np.ndarray] = {"reward_total": np.asarray(rollout.totals, np.float64)}
    for j, name in enumerate(COMPONENT_NAMES):
        out[f"reward_{name}"] = np.asarray(rollout.components[:, j], np.float64)
    out.update({k: np.concatenate(v) for k, v in parts.items()})
    out["episode_length"] = rollout.lengths.astype(np.float64)
    return out


def kid_subset_size(n_episodes: int) -> int:
    """Rows per KID subset in an evaluation of ``n_episodes``: ``min(1000, max(2, n // 2))``.

    KID's spread comes from drawing subsets smaller than the set: subsets of all
    ``n_episodes`` rows would be the same set every round, and ``kid_std`` always 0. Half
    the episodes (up to KID's usual 1000) lets the subsets differ. With 2 episodes the one
    subset is both of them (std 0); with 3, the subsets of 2 share at least one row.
    """
    return min(KID_MAX_SUBSET, max(2, n_episodes // 2))


def set_metrics(rollout: EpisodeRollout, *, seed: int = 0) -> dict[str, float]:
    """Fréchet distance and KID between the final canvases' and the targets' embeddings.

    :param rollout: at least 2 episodes.
    :param seed: seed of KID's subset draws.
    :return: ``{"frechet_distance", "kid_mean", "kid_std"}``.
    """
    perceptual = rollout.rewards.perceptual
    emb_final = torch.cat(
        [
            perceptual.embed(rollout.final[i : i + _CHUNK])
            for i in range(0, len(rollout.final), _CHUNK)
        ]
    )
    emb_target = torch.cat(
        [
            perceptual.embed(rollout.target[i : i + _CHUNK])
            for i in range(0, len(rollout.target), _CHUNK)
        ]
    )
    fd = frechet_distance(emb_final, emb_target)
    kid_mean, kid_std = kernel_inception_distance(
        emb_final,
        emb_target,
        subset_size=kid_subset_size(len(emb_final)),
        n_subsets=KID_SUBSETS,
        seed=seed,
    )
    return {"frechet_distance": fd, "kid_mean": kid_mean, "kid_std": kid_std}
