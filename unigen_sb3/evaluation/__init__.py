"""The one evaluation path: seeded rollouts through the training stack, metrics, reports.

- :mod:`~unigen_sb3.evaluation.rollout`: :func:`rollout_episodes` runs a policy on a seeded
  task set through the stack built from an evaluation spec (the env computes the reward and
  its sub-metrics); :class:`ModelPolicy` adapts a trained model.
- :mod:`~unigen_sb3.evaluation.metrics`: the evaluation-only metrics (LPIPS distance, SSIM,
  PSNR, region SSIM, IoU, attribute accuracy, Fréchet distance, KID).
- :mod:`~unigen_sb3.evaluation.report`: :func:`evaluate_unigen` and the ``eval.json`` report.
- :mod:`~unigen_sb3.evaluation.stability`: summaries across runs (seeds).
- :mod:`~unigen_sb3.evaluation.baselines` / :mod:`~unigen_sb3.evaluation.blind`: the
  baselines an agent is compared with (Random, NoOp, Blind, Oracle).
"""

from unigen_sb3.evaluation.metrics import (
    EVAL_METRICS,
    KID_MAX_SUBSET,
    KID_SUBSETS,
    PSNR_CAP_DB,
    SET_METRICS,
    episode_metrics,
    kid_subset_size,
    set_metrics,
)
from unigen_sb3.evaluation.report import (
    SCHEMA_VERSION,
    dumps_report,
    evaluate_unigen,
    evaluation_rollout,
    load_report,
    log_report,
    swap_permutation,
    write_report,
)
from unigen_sb3.evaluation.rollout import (
    EpisodeRollout,
    ModelPolicy,
    episode_returns,
    evaluation_spec,
    rollout_episodes,
)
from unigen_sb3.evaluation.stability import stability_summary, steps_to_fraction

__all__ = [
    "EVAL_METRICS",
    "KID_MAX_SUBSET",
    "KID_SUBSETS",
    "PSNR_CAP_DB",
    "SCHEMA_VERSION",
    "SET_METRICS",
    "EpisodeRollout",
    "ModelPolicy",
    "dumps_report",
    "episode_metrics",
    "episode_returns",
    "evaluate_unigen",
    "evaluation_rollout",
    "evaluation_spec",
    "kid_subset_size",
    "load_report",
    "log_report",
    "rollout_episodes",
    "set_metrics",
    "stability_summary",
    "steps_to_fraction",
    "swap_permutation",
    "write_report",
]
