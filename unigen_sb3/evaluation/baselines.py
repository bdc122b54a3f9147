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
from unigen_sb3.evaluation.blind import BlindResult, blind_search
from unigen_sb3.evaluation.report import EnvOrConfig, evaluate_unigen, evaluation_rollout
from unigen_sb3.evaluation.rollout import evaluation_spec

#: Tasks the Blind search scores candidates on in :func:`blind_baseline` (at most).
BLIND_SEARCH_EPISODES = 16
#: Beam width of that search.
BLIND_SEARCH_BEAM = 2


def blind_baseline(
    env_config: EnvOrConfig,
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
) -> BlindResult:
    """The Blind baseline of an env config: the best prompt-blind open-loop sequence.

    Beam search (:func:`~unigen_sb3.evaluation.blind.blind_search`, depth 2, beam
    :data:`BLIND_SEARCH_BEAM`) over the ``discrete`` library on the first
    ``min(n_episodes, BLIND_SEARCH_EPISODES)`` tasks of the evaluation set (episode ``j``
    uses seed ``seed + j``), under the config's task, size, horizon and weights.

    :param env_config: the settings, as :func:`~unigen_sb3.evaluation.evaluate_unigen`
        takes them (a spec, ``make_unigen_env`` keywords or a built stack).
    :param n_episodes: the evaluation set's size.
    :param seed: its base seed.
    :param prompt_split: its prompt split.
    :return: the search result (its ``actions`` are what :class:`SequencePolicy` replays).
    """
    spec = evaluation_spec(env_config, prompt_split=prompt_split)
    return blind_search(
        spec.task,
        depth=2,
        beam=BLIND_SEARCH_BEAM,
        n_episodes=min(int(n_episodes), BLIND_SEARCH_EPISODES),
        seed=seed,
        prompt_split=spec.prompt_split,
        weights=spec.weight_tuple(),  # type: ignore[arg-type]
        size=spec.size,
        horizon=spec.horizon,
        device=spec.device,
        perceptual_backend=spec.perceptual_backend,
        edit_fraction=spec.edit_fraction,
    )


def blind_baseline_score(env_config: EnvOrConfig, n_episodes: int, seed: int) -> float:
    """Mean R_total of :func:`blind_baseline`'s sequence on the whole held-out evaluation set.

    :param env_config: the settings (see :func:`blind_baseline`).
    :param n_episodes: episodes of the evaluation set (>= 2).
    :param seed: its base seed.
    """
    result = blind_baseline(env_config, n_episodes, seed)
    report = evaluate_unigen(result.policy(), env_config, n_episodes, seed)
    return float(report["metrics"]["reward_total"]["mean"])


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
    env_config: EnvOrConfig,
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
    model_name: str = "trained model",
) -> dict[str, dict[str, Any]]:
    """Evaluation reports (``eval.json`` schema) of the model and of Random, NoOp, Blind and
    Oracle.

    Every policy faces the same ``n_episodes`` tasks (episode ``j`` uses seed ``seed + j``).
    Blind is the best prompt-blind open-loop sequence (:func:`blind_baseline`): a model that
    does not beat it has not shown that it reads the prompt.

    :param model: a trained SB3 model, or any policy :func:`evaluate_unigen` accepts.
    :param env_config: the settings of the model's env (a spec, ``make_unigen_env``
        keywords or a built stack: task, action, obs, size, horizon, weights...).
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
        "Blind (best prompt-blind sequence)": blind_baseline(
            env_config, n_episodes, seed, prompt_split=prompt_split
        ).policy(),
        "Oracle (privileged)": OraclePolicy(),
    }
    return {
        name: evaluate_unigen(policy, env_config, n_episodes, seed, prompt_split=prompt_split)
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
    env_config: EnvOrConfig,
    n: int = 4,
    seed: int = 0,
    *,
    prompt_split: str | None = "heldout",
) -> np.ndarray:
    """Rows of ``start | the model's final canvas | target`` for ``n`` seeded tasks.

    :return: uint8 ``(n * H, 3 * W, 3)``.
    """
    rollout, *_ = evaluation_rollout(model, env_config, max(n, 2), seed, prompt_split=prompt_split)
    panels = [rollout.start[:n], rollout.final[:n], rollout.target[:n]]
    grid = np.concatenate([(p * 255).round().byte().cpu().numpy() for p in panels], axis=3)
    return np.ascontiguousarray(np.concatenate(list(grid), axis=1).transpose(1, 2, 0))
