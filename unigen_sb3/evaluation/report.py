"""Deterministic evaluation on a fixed task set and its JSON report.

:func:`evaluate_unigen` runs a policy (a trained SB3 model or a scripted policy) on
``n_episodes`` tasks drawn from seeds ``seed, seed + 1, ...`` (held-out prompts by default),
all in lockstep through the evaluation stack
(:func:`~unigen_sb3.evaluation.rollout.rollout_episodes`: the stack training uses, built
from the evaluation spec), and reports per-episode metrics
(mean and population std over episodes) and set-level distribution distances. The report
is a JSON-ready dict (schema 1):

.. code-block:: text

    {"schema": 1, "n_episodes", "seed", "task", "prompt_split", "backend", "size", "horizon",
     "edit_fraction", "reference", "policy", "deterministic", "psnr_cap_db", "std_ddof",
     "kid_subset_size",
     "weights": {"quality", "edit", "consistency"},
     "metrics": {"reward_total" | "reward_quality" | "reward_edit" | "reward_consistency" |
                 "lpips" | "ssim" | "psnr" | "region_ssim" | "mask_iou" |
                 "attribute_accuracy" | "episode_length": {"mean", "std"}},
     "sub_metrics": {"quality/perceptual" | "quality/realism" | "edit/accuracy" |
                     "edit/localization" | "edit/preservation" | "consistency/style" |
                     "consistency/temporal" | "consistency/temporal_min": {"mean", "std"}},
     "set_metrics": {"frechet_distance", "kid_mean", "kid_std"},
     "prompt_swap": {"reward_total", "drop", "n_swapped"} | null}

Metric definitions (final canvas = what the episode left behind):

- ``reward_*``: the final unified reward and its normalized components, as the env's
  reward wrapper paid them at each episode's last step (bounded normalization over the
  components' declared ranges, whatever the training env used, so runs stay comparable;
  no shaping).
- ``sub_metrics``: the reward's sub-metrics at each episode's last step, as the env's
  :class:`~unigen_sb3.rewards.components.RewardComputer` computed them
  (``info["sub_metrics"]``; ``consistency/temporal`` is the last transition's and
  ``consistency/temporal_min`` the episode's lowest, which the paid consistency uses).
- the image metrics and ``frechet_distance`` / ``kid_*``: evaluation-only, see
  :mod:`unigen_sb3.evaluation.metrics`. KID is the unbiased MMD^2 over 100 seeded random
  subsets of :func:`~unigen_sb3.evaluation.metrics.kid_subset_size` episodes (half of them,
  at most 1000): ``kid_mean`` is its mean over the subsets and ``kid_std`` the spread
  across them (0 with 2 episodes, whose one subset is both).
- ``prompt_swap`` (prompt sensitivity, for models; ``null`` for scripted policies, which
  read their task, not the observation): the same episodes rolled out again with each
  episode's prompt encoding (the ``attributes`` observation) swapped for that of the next
  episode of the same task kind (:func:`swap_permutation`), the task, target and reward
  unchanged. ``reward_total`` is the mean R_total then, ``drop`` the fall from the
  unswapped mean (an agent that ignores the prompt loses nothing) and ``n_swapped`` the
  episodes whose observed prompt really changed.

Same model, same settings and same seed give byte-identical JSON (:func:`dumps_report`:
sorted keys, floats rounded to 7 significant digits (float32 precision), no timestamps) on the
same machine with the same torch thread count; another thread count changes the float32
reduction order, which can flip the last digit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv

from unigen_sb3.envs.policies import ScriptedPolicy
from unigen_sb3.evaluation.metrics import PSNR_CAP_DB, episode_metrics, kid_subset_size, set_metrics
from unigen_sb3.evaluation.rollout import (
    EpisodeRollout,
    ModelPolicy,
    evaluation_spec,
    rollout_episodes,
)
from unigen_sb3.spec import UniGenSpec
from unigen_sb3.utils import atomic_write_text

__all__ = [
    "SCHEMA_VERSION",
    "EnvOrConfig",
    "canonical",
    "dumps_report",
    "evaluate_unigen",
    "evaluation_rollout",
    "load_report",
    "log_report",
    "swap_permutation",
    "write_report",
]

SCHEMA_VERSION = 1
_SIGNIFICANT = 7  # float32 precision: digits beyond it are reduction-order noise
_SPLIT_FROM_ENV = "env"

EnvOrConfig = UniGenSpec | Mapping[str, Any] | gym.Env[Any, Any] | VecEnv | None
"""Where evaluation settings come from: a spec, ``make_unigen_env`` keywords, a built stack
(its spec) or ``None`` (the defaults)."""


def _policy(model: Any, deterministic: bool) -> ScriptedPolicy | ModelPolicy:
    if isinstance(model, ScriptedPolicy | ModelPolicy):
        return model
    if not callable(getattr(model, "predict", None)):
        raise TypeError(
            f"model must be an SB3 model (with predict()), a ScriptedPolicy or a ModelPolicy; "
            f"got {type(model).__name__}"
        )
    return ModelPolicy(model, deterministic=deterministic)


def _spec_for(
    model: Any,
    env_or_config: EnvOrConfig,
    prompt_split: str | None,
    codec: str | None,
    obs: str | None,
) -> UniGenSpec:
    """The evaluation spec: the settings' spec with the asked split, encoding and obs mode.

    Without ``obs``, a model's own observation space decides it (what it was trained on).
    """
    changes: dict[str, Any] = {}
    if prompt_split != _SPLIT_FROM_ENV:
        changes["prompt_split"] = prompt_split
    if codec is not None:
        if not isinstance(codec, str):
            raise TypeError(
                f"codec must be an action encoding name such as 'box' (give a custom library "
                f"as the spec's action_options); got {type(codec).__name__}"
            )
        changes["action"] = codec
    space = getattr(model, "observation_space", None)
    if obs is None and space is not None and not isinstance(model, ScriptedPolicy):
        obs = "dict" if isinstance(space, gym.spaces.Dict) else "image"
    if obs is not None:
        changes["obs"] = obs
    return evaluation_spec(env_or_config, **changes)


def evaluation_rollout(
    model: Any,
    env_or_config: EnvOrConfig,
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
    codec: str | None = None,
    obs: str | None = None,
    deterministic: bool = True,
    prompt_permutation: Sequence[int] | None = None,
) -> tuple[EpisodeRollout, UniGenSpec, ScriptedPolicy | ModelPolicy]:
    """The seeded episodes :func:`evaluate_unigen` scores, with their images.

    Same arguments as :func:`evaluate_unigen`.

    :return: ``(rollout, spec, policy)``: the episodes (start, final and target canvases,
        the env's rewards and sub-metrics...), the evaluation spec and the policy that acted.
    """
    spec = _spec_for(model, env_or_config, prompt_split, codec, obs)
    policy = _policy(model, deterministic)
    rollout = rollout_episodes(
        policy, spec, n_episodes=n_episodes, seed=seed, prompt_permutation=prompt_permutation
    )
    return rollout, spec, policy


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "std": float(values.std())}


def evaluate_unigen(
    model: Any,
    env_or_config: EnvOrConfig = None,
    n_episodes: int = 32,
    seed: int = 0,
    *,
    prompt_split: str | None = "heldout",
    codec: str | None = None,
    obs: str | None = None,
    deterministic: bool = True,
    json_path: str | os.PathLike[str] | None = None,
    logger: Logger | None = None,
    log_step: int = 0,
) -> dict[str, Any]:
    """Evaluate a model or a scripted policy on a fixed, seeded task set.

    :param model: a trained SB3 model (anything with ``predict``), a
        :class:`~unigen_sb3.envs.policies.ScriptedPolicy` (e.g. ``OraclePolicy()``) or a
        :class:`~unigen_sb3.evaluation.rollout.ModelPolicy`.
    :param env_or_config: where the settings come from: a :class:`~unigen_sb3.spec.UniGenSpec`,
        a dict of :func:`~unigen_sb3.make.make_unigen_env` keywords (``task``, ``size``,
        ``horizon``, ``w_quality``, ``action``, ``obs``, ``prompt_split``...), an env or
        VecEnv built by the composition root (its spec is read), or ``None`` (the defaults).
    :param n_episodes: number of episodes, >= 2 (the set-level metrics need two).
    :param seed: episode ``j`` draws its task from ``seed + j``.
    :param prompt_split: ``"heldout"`` (default: prompts never trained on), ``"train"``,
        ``None`` (all prompts) or ``"env"`` (the split of ``env_or_config``).
    :param codec: the action encoding name (``"box"``...) the model acts in; default: the
        settings' ``action``.
    :param obs: ``"image"`` or ``"dict"``; default: from the model's observation space.
    :param deterministic: passed to the model's ``predict``.
    :param json_path: if given, the report is written there atomically.
    :param logger: if given, the report is recorded under ``eval/`` and dumped at ``log_step``.
    :param log_step: the step written with the logged values.
    :return: the report (see the module docstring for its schema).
    :raises ValueError: for ``n_episodes < 2``, an unknown split, or settings whose action
        or observation space does not fit the model.
    :raises TypeError: for a model or settings of the wrong kind.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 2:
        raise ValueError(
            f"n_episodes={n_episodes!r} must be an int >= 2 (Fréchet distance and KID need two)"
        )
    if prompt_split not in ("heldout", "train", None, _SPLIT_FROM_ENV):
        raise ValueError(
            f"prompt_split={prompt_split!r}; accepted: 'heldout', 'train', None, 'env'"
        )
    rollout, spec, policy = evaluation_rollout(
        model,
        env_or_config,
        n_episodes,
        seed,
        prompt_split=prompt_split,
        codec=codec,
        obs=obs,
        deterministic=deterministic,
    )
    per_episode = episode_metrics(rollout)
    prompt_swap = None
    if isinstance(policy, ModelPolicy):
        prompt_swap = _prompt_swap(rollout, policy, spec, n_episodes, seed)
    policy_name = type(policy.model if isinstance(policy, ModelPolicy) else policy).__name__
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "n_episodes": n_episodes,
        "seed": seed,
        "task": spec.task,
        "prompt_split": spec.prompt_split,
        "backend": spec.perceptual_backend,
        "size": spec.size,
        "horizon": spec.horizon,
        "edit_fraction": spec.edit_fraction,
        "reference": spec.reference,
        "policy": policy_name,
        "deterministic": deterministic,
        "psnr_cap_db": PSNR_CAP_DB,
        "std_ddof": 0,
        "kid_subset_size": kid_subset_size(n_episodes),
        "weights": dict(spec.weights),
        "metrics": {name: _summary(v) for name, v in per_episode.items()},
        "sub_metrics": {name: _summary(v) for name, v in sorted(rollout.sub_metrics.items())},
        "set_metrics": set_metrics(rollout, seed=seed),
        "prompt_swap": prompt_swap,
    }
    report = canonical(report)
    if json_path is not None:
        write_report(report, json_path)
    if logger is not None:
        log_report(logger, report, step=log_step)
    return report


def swap_permutation(kinds: Sequence[str]) -> list[int]:
    """The prompt-swap permutation: each episode takes the prompt of the next episode of the
    same task kind (cyclically), so every kind with two or more episodes is deranged and
    an observed prompt always belongs to the same kind of task.

    :param kinds: each episode's task kind, in episode order.
    :return: ``perm`` with ``perm[i]`` the episode whose prompt episode ``i`` observes.
    """
    perm = list(range(len(kinds)))
    for kind in dict.fromkeys(kinds):
        rows = [i for i, k in enumerate(kinds) if k == kind]
        for i, j in zip(rows, rows[1:] + rows[:1], strict=True):
            perm[i] = j
    return perm


def _prompt_swap(
    rollout: EpisodeRollout,
    policy: ModelPolicy,
    spec: UniGenSpec,
    n_episodes: int,
    seed: int,
) -> dict[str, Any]:
    """The counterfactual score with prompts swapped between episodes (same tasks)."""
    perm = swap_permutation([t.kind for t in rollout.tasks])
    swapped = rollout_episodes(
        policy, spec, n_episodes=n_episodes, seed=seed, prompt_permutation=perm
    )
    changed = sum(
        not np.array_equal(rollout.tasks[i].attributes, rollout.tasks[j].attributes)
        for i, j in enumerate(perm)
    )
    return {
        "reward_total": float(swapped.totals.mean()),
        "drop": float(rollout.totals.mean() - swapped.totals.mean()),
        "n_swapped": int(changed),
    }


def canonical(obj: Any) -> Any:
    """Plain JSON types with floats rounded to 7 significant digits (NaN/inf -> None)."""
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    if isinstance(obj, bool | str) or obj is None:
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        if not math.isfinite(value):
            return None
        return float(f"{value:.{_SIGNIFICANT}g}")
    raise TypeError(f"cannot put {type(obj).__name__} {obj!r} into a report")


def dumps_report(report: Mapping[str, Any]) -> str:
    """The report as canonical JSON text: sorted keys, indent 2, 7-digit floats, a final newline."""
    return json.dumps(canonical(report), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write :func:`dumps_report` text atomically (temp file in the same folder, then rename).

    :return: the path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, dumps_report(report))
    return target


def load_report(path_or_dict: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read a report (a path to its JSON, or the dict itself) and check its schema version.

    :raises ValueError: for another schema version or a missing ``metrics`` table.
    """
    if isinstance(path_or_dict, Mapping):
        report = dict(path_or_dict)
        where = "report"
    else:
        where = str(path_or_dict)
        report = json.loads(Path(path_or_dict).read_text(encoding="utf-8"))
    if report.get("schema") != SCHEMA_VERSION or not isinstance(report.get("metrics"), Mapping):
        raise ValueError(
            f"{where}: expected an evaluation report with schema {SCHEMA_VERSION} and a "
            f"'metrics' table; got schema={report.get('schema')!r}, keys {sorted(report)}"
        )
    return report


def log_report(
    logger: Logger, report: Mapping[str, Any], *, step: int, prefix: str = "eval"
) -> None:
    """Record a report's means (``eval/<metric>``) and set metrics, then dump at ``step``."""
    for name, stats in report["metrics"].items():
        if stats.get("mean") is not None:
            logger.record(f"{prefix}/{name}", float(stats["mean"]))
    for name, value in report.get("set_metrics", {}).items():
        if value is not None:
            logger.record(f"{prefix}/{name}", float(value))
    logger.dump(step)
