"""Compare a trained model with the scripted baselines on one fixed, seeded task set.

Used by ``make run`` (``examples/compare_baselines.py``) and ``examples/quickstart.py``.

Example:
    >>> from unigen_sb3.envs.policies import OraclePolicy
    >>> reports = compare_with_baselines(OraclePolicy(), {"task": "edit"}, 4, 0)  # doctest: +SKIP
    >>> print(comparison_table(reports))                                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from unigen_sb3.envs.policies import NoOpPolicy, OraclePolicy, RandomPolicy
from unigen_sb3.evaluation import evaluate_unigen, evaluation_rollout

#: Columns of :func:`comparison_table`: eval.json metric name -> column title.
TABLE_METRICS: dict[str, str] = {
    "reward_total": "R_total",
    "reward_quality": "quality",
    "reward_edit": "edit",
    "reward_consistency": "consistency",
    "lpips": "LPIPS dist.",
    "attribute_accuracy": "attr. acc.",
    "episode_length": "length",
}


def compare_with_baselines(
    model: Any,
    env_config: Mapping[str, Any],
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
    model_name: str = "trained model",
) -> dict[str, dict[str, Any]]:
    """Evaluation reports (``eval.json`` schema) of the model and of Random, NoOp and Oracle.

    Every policy faces the same ``n_episodes`` tasks (episode ``j`` uses seed ``seed + j``).

    :param model: a trained SB3 model, or any policy :func:`evaluate_unigen` accepts.
    :param env_config: :func:`~unigen_sb3.envs.factory.make_unigen_env` kwargs of the
        model's env (task, action, obs, size, horizon, weights...).
    :param n_episodes: episodes per policy (>= 2).
    :param seed: base seed of the task set.
    :param prompt_split: prompt split of the tasks (held-out by default).
    :param model_name: the model's row name.
    :return: policy name -> report, the model first.
    """
    policies: dict[str, Any] = {
        model_name: model,
        "Random": RandomPolicy(seed=seed),
        "NoOp": NoOpPolicy(),
        "Oracle (privileged)": OraclePolicy(),
    }
    return {
        name: evaluate_unigen(policy, dict(env_config), n_episodes, seed, prompt_split=prompt_split)
        for name, policy in policies.items()
    }


def comparison_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table: one row per policy, mean (std) of :data:`TABLE_METRICS`."""
    header = "| policy | " + " | ".join(TABLE_METRICS.values()) + " |"
    lines = [header, "|---|" + "---:|" * len(TABLE_METRICS)]
    for name, report in reports.items():
        cells = []
        for key in TABLE_METRICS:
            m = report["metrics"][key]
            cells.append(f"{m['mean']:.3f} ({m['std']:.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def before_after_image(
    model: Any,
    env_config: Mapping[str, Any],
    n: int = 4,
    seed: int = 0,
    *,
    prompt_split: str | None = "heldout",
) -> np.ndarray:
    """Rows of ``start | the model's final canvas | target`` for ``n`` seeded tasks.

    :return: uint8 ``(n * H, 3 * W, 3)``.
    """
    rollout, *_ = evaluation_rollout(
        model, dict(env_config), max(n, 2), seed, prompt_split=prompt_split
    )
    panels = [rollout.start[:n], rollout.final[:n], rollout.target[:n]]
    grid = np.concatenate([(p * 255).round().byte().cpu().numpy() for p in panels], axis=3)
    return np.ascontiguousarray(np.concatenate(list(grid), axis=1).transpose(1, 2, 0))
