"""Deterministic evaluation on a fixed task set, its JSON report, and stability summaries.

:func:`evaluate_unigen` runs a policy (a trained SB3 model or a scripted policy) on
``n_episodes`` tasks drawn from seeds ``seed, seed + 1, ...`` (held-out prompts by default),
all in lockstep on one batched core (:func:`~unigen_sb3.envs.policies.rollout_episodes`),
and reports per-episode metrics (mean and population std over episodes) and set-level
distribution distances. The report is a JSON-ready dict (schema 1):

.. code-block:: text

    {"schema": 1, "n_episodes", "seed", "task", "prompt_split", "backend", "size", "horizon",
     "edit_fraction", "reference", "policy", "deterministic", "psnr_cap_db", "std_ddof",
     "kid_subset_size",
     "weights": {"quality", "edit", "consistency"},
     "metrics": {"reward_total" | "reward_quality" | "reward_edit" | "reward_consistency" |
                 "lpips" | "ssim" | "psnr" | "region_ssim" | "mask_iou" |
                 "attribute_accuracy" | "episode_length": {"mean", "std"}},
     "set_metrics": {"frechet_distance", "kid_mean", "kid_std"},
     "prompt_swap": {"reward_total", "drop", "n_swapped"} | null}

Metric definitions (final canvas = what the episode left behind):

- ``reward_*``: the final unified reward and its normalized components (bounded
  normalization over the components' declared ranges, whatever the training env used,
  so runs stay comparable; no shaping).
- ``lpips``: the env backend's perceptual distance (``backend``) between final canvas and target.
- ``ssim`` / ``psnr``: final canvas vs target; PSNR of identical images is infinite and is
  capped at ``psnr_cap_db`` (100 dB).
- ``region_ssim``: SSIM inside the task mask; ``mask_iou``: IoU of the pixels the episode
  changed (final vs start) with the mask; ``attribute_accuracy``: fraction of mask pixels
  within Delta-E 10 of the target colour.
- ``prompt_swap`` (prompt sensitivity, for models; ``null`` for scripted policies, which
  read their task, not the observation): the same episodes rolled out again with each
  episode's prompt encoding (the ``attributes`` observation) swapped for that of the next
  episode of the same task kind (:func:`swap_permutation`), the task, target and reward
  unchanged. ``reward_total`` is the mean R_total then, ``drop`` the fall from the
  unswapped mean (an agent that ignores the prompt loses nothing) and ``n_swapped`` the
  episodes whose observed prompt really changed.
- ``frechet_distance`` / ``kid_*``: Fréchet distance and kernel distance between the
  perceptual embeddings of the final canvases and of the targets. KID is the unbiased MMD^2
  over 100 seeded random subsets of :func:`kid_subset_size` episodes (half of them, at most
  1000): ``kid_mean`` is its mean over the subsets and ``kid_std`` the spread across them
  (0 with 2 episodes, whose one subset is both).

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
import torch
from stable_baselines3.common.logger import Logger

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS
from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.envs.policies import EpisodeRollout, ModelPolicy, ScriptedPolicy, rollout_episodes
from unigen_sb3.rewards.metrics import changed_mask, color_accuracy, mask_iou, psnr, ssim
from unigen_sb3.rewards.normalizers import COMPONENT_NAMES
from unigen_sb3.rewards.perceptual import frechet_distance, kernel_inception_distance
from unigen_sb3.utils import atomic_write_text
from unigen_sb3.wrappers.actions import make_codec

__all__ = [
    "EVAL_METRICS",
    "KID_MAX_SUBSET",
    "KID_SUBSETS",
    "PSNR_CAP_DB",
    "SCHEMA_VERSION",
    "dumps_report",
    "evaluate_unigen",
    "kid_subset_size",
    "load_report",
    "log_report",
    "stability_summary",
    "swap_permutation",
    "write_report",
]

SCHEMA_VERSION = 1
PSNR_CAP_DB = 100.0
"""PSNR of identical images is infinite; reports cap it here."""
EVAL_METRICS: tuple[str, ...] = (
    "reward_total",
    *(f"reward_{n}" for n in COMPONENT_NAMES),
    "lpips",
    "ssim",
    "psnr",
    "region_ssim",
    "mask_iou",
    "attribute_accuracy",
    "episode_length",
)
"""The per-episode metrics of a report, each summarized as ``{"mean", "std"}``."""
SET_METRICS: tuple[str, ...] = ("frechet_distance", "kid_mean", "kid_std")
#: KID's subsets per evaluation, and the most rows per subset (:func:`kid_subset_size`).
KID_SUBSETS = 100
KID_MAX_SUBSET = 1000
_SIGNIFICANT = 7  # float32 precision: digits beyond it are reduction-order noise
_CHUNK = 64  # episodes per metric batch (bounds memory for large evaluations)
_SPLIT_FROM_ENV = "env"


# --------------------------------------------------------------------------- settings


def _find_wrapper_attr(env: gym.Env[Any, Any], name: str) -> Any:
    """The outermost wrapper's own attribute ``name`` (not forwarded), or None."""
    current: Any = env
    while isinstance(current, gym.Wrapper):
        value = current.__dict__.get(name)
        if value is not None:
            return value
        current = current.env
    return None


def _unified_weights(env: gym.Env[Any, Any]) -> dict[str, float] | None:
    from unigen_sb3.wrappers.reward import UnifiedRewardWrapper

    current: Any = env
    while isinstance(current, gym.Wrapper):
        if isinstance(current, UnifiedRewardWrapper):
            return current.unifier.weights
        current = current.env
    return None


def _settings_from_env(env: gym.Env[Any, Any]) -> dict[str, Any]:
    base = env.unwrapped
    if not isinstance(base, UniGenEnv):
        raise TypeError(
            f"env_or_config must be a dict of make_unigen_env kwargs or an env built on "
            f"UniGenEnv; got an env whose unwrapped env is {type(base).__name__}"
        )
    return {
        "task": base.task,
        "size": base.size,
        "horizon": base.horizon,
        "device": base.device,
        "backend": base.rewards.backend,
        "edit_fraction": base.sampler.edit_fraction,
        "prompt_split": base.sampler.prompt_split,
        "reference": base.reference,
        "weights": _unified_weights(env),
        "codec": _find_wrapper_attr(env, "codec"),
        "obs": "dict" if isinstance(env.observation_space, gym.spaces.Dict) else "image",
    }


def _resolve_settings(env_or_config: Any) -> dict[str, Any]:
    """Evaluation settings from a make_unigen_env kwargs dict or a built env."""
    from unigen_sb3.envs.factory import make_unigen_env

    if env_or_config is None:
        env_or_config = {}
    if isinstance(env_or_config, gym.Env):
        return _settings_from_env(env_or_config)
    if isinstance(env_or_config, Mapping):
        # Build the stack once: its wrappers are the one source of truth for the codec,
        # the observation mode and the weights.
        env = make_unigen_env(**dict(env_or_config))
        try:
            return _settings_from_env(env)
        finally:
            env.close()
    raise TypeError(
        "env_or_config must be None, a dict of make_unigen_env kwargs or a gymnasium env; "
        f"got {type(env_or_config).__name__}"
    )


def _make_policy(
    model: Any, settings: Mapping[str, Any], codec: Any, obs: str | None, deterministic: bool
) -> ScriptedPolicy | ModelPolicy:
    if isinstance(model, ScriptedPolicy | ModelPolicy):
        return model
    if not callable(getattr(model, "predict", None)):
        raise TypeError(
            f"model must be an SB3 model (with predict()), a ScriptedPolicy or a ModelPolicy; "
            f"got {type(model).__name__}"
        )
    if isinstance(codec, str):
        codec = make_codec(codec, NUM_OPS, NUM_PARAMS)
    elif codec is None:
        codec = settings["codec"]
    space = getattr(model, "observation_space", None)
    if obs is None:
        # The model's own space is what it was trained on: trust it over the env's.
        if space is not None:
            obs = "dict" if isinstance(space, gym.spaces.Dict) else "image"
        else:
            obs = settings["obs"]
    codec_space = getattr(codec, "space", None)
    model_actions = getattr(model, "action_space", None)
    if codec_space is not None and model_actions is not None:
        if codec_space.shape != model_actions.shape or type(codec_space) is not type(model_actions):
            raise ValueError(
                f"the model acts in {model_actions} but the action codec expects {codec_space}; "
                "pass codec= (a codec object or an encoding name such as 'box') matching the "
                "env the model was trained on"
            )
    return ModelPolicy(model, codec=codec, obs=obs, deterministic=deterministic)


# --------------------------------------------------------------------------- metrics


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


# --------------------------------------------------------------------------- the report


def evaluation_rollout(
    model: Any,
    env_or_config: Mapping[str, Any] | gym.Env[Any, Any] | None,
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
    codec: Any = None,
    obs: str | None = None,
    deterministic: bool = True,
    prompt_permutation: Sequence[int] | None = None,
) -> tuple[EpisodeRollout, dict[str, Any], ScriptedPolicy | ModelPolicy, str | None]:
    """The seeded episodes :func:`evaluate_unigen` scores, with their images.

    Same arguments as :func:`evaluate_unigen` (unvalidated here).

    :return: ``(rollout, settings, policy, prompt_split)``: the episodes (start, final and
        target canvases...), the resolved env settings, the policy that acted and the split.
    """
    settings = _resolve_settings(env_or_config)
    split = settings["prompt_split"] if prompt_split == _SPLIT_FROM_ENV else prompt_split
    policy = _make_policy(model, settings, codec, obs, deterministic)
    weights = settings["weights"]
    weight_tuple = None if weights is None else tuple(weights[n] for n in COMPONENT_NAMES)
    rollout = rollout_episodes(
        policy,
        settings["task"],
        n_episodes=n_episodes,
        seed=seed,
        weights=weight_tuple,
        size=settings["size"],
        horizon=settings["horizon"],
        device=settings["device"],
        perceptual_backend=settings["backend"],
        edit_fraction=settings["edit_fraction"],
        prompt_split=split,
        reference=settings["reference"],
        prompt_permutation=prompt_permutation,
    )
    return rollout, settings, policy, split


def evaluate_unigen(
    model: Any,
    env_or_config: Mapping[str, Any] | gym.Env[Any, Any] | None = None,
    n_episodes: int = 32,
    seed: int = 0,
    *,
    prompt_split: str | None = "heldout",
    codec: Any = None,
    obs: str | None = None,
    deterministic: bool = True,
    json_path: str | os.PathLike[str] | None = None,
    logger: Logger | None = None,
    log_step: int = 0,
) -> dict[str, Any]:
    """Evaluate a model or a scripted policy on a fixed, seeded task set.

    :param model: a trained SB3 model (anything with ``predict``), a
        :class:`~unigen_sb3.envs.policies.ScriptedPolicy` (e.g. ``OraclePolicy()``) or a
        :class:`~unigen_sb3.envs.policies.ModelPolicy`.
    :param env_or_config: where the settings come from: a dict of
        :func:`~unigen_sb3.envs.factory.make_unigen_env` kwargs (``task``, ``size``,
        ``horizon``, ``w_quality``, ``action``, ``obs``, ``prompt_split``...), an env built by
        ``make_unigen_env`` (its ``UniGenEnv`` settings, reward weights, action codec and
        observation mode are read), or ``None`` (the defaults).
    :param n_episodes: number of episodes, >= 2 (the set-level metrics need two).
    :param seed: episode ``j`` draws its task from ``seed + j``.
    :param prompt_split: ``"heldout"`` (default: prompts never trained on), ``"train"``,
        ``None`` (all prompts) or ``"env"`` (the split of ``env_or_config``).
    :param codec: the action codec of the model's env, or an encoding name (``"box"``...);
        default: the codec of ``env_or_config``'s stack (Box unless it says otherwise).
    :param obs: ``"image"`` or ``"dict"``; default: from the model's observation space.
    :param deterministic: passed to the model's ``predict``.
    :param json_path: if given, the report is written there atomically.
    :param logger: if given, the report is recorded under ``eval/`` and dumped at ``log_step``.
    :param log_step: the step written with the logged values.
    :return: the report (see the module docstring for its schema).
    :raises ValueError: for ``n_episodes < 2``, an unknown split, or a codec that does not
        fit the model.
    :raises TypeError: for a model or env of the wrong kind.
    """
    if not isinstance(n_episodes, int) or n_episodes < 2:
        raise ValueError(
            f"n_episodes={n_episodes!r} must be an int >= 2 (Fréchet distance and KID need two)"
        )
    if prompt_split not in ("heldout", "train", None, _SPLIT_FROM_ENV):
        raise ValueError(
            f"prompt_split={prompt_split!r}; accepted: 'heldout', 'train', None, 'env'"
        )
    options: dict[str, Any] = {
        "prompt_split": prompt_split,
        "codec": codec,
        "obs": obs,
        "deterministic": deterministic,
    }
    rollout, settings, policy, split = evaluation_rollout(
        model, env_or_config, n_episodes, seed, **options
    )
    per_episode = episode_metrics(rollout)
    prompt_swap = None
    if isinstance(policy, ModelPolicy):
        prompt_swap = _prompt_swap(rollout, model, env_or_config, n_episodes, seed, **options)
    policy_name = type(policy.model if isinstance(policy, ModelPolicy) else policy).__name__
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "n_episodes": n_episodes,
        "seed": seed,
        "task": settings["task"],
        "prompt_split": split,
        "backend": rollout.rewards.backend,
        "size": settings["size"],
        "horizon": settings["horizon"],
        "edit_fraction": settings["edit_fraction"],
        "reference": settings["reference"],
        "policy": policy_name,
        "deterministic": deterministic,
        "psnr_cap_db": PSNR_CAP_DB,
        "std_ddof": 0,
        "kid_subset_size": kid_subset_size(n_episodes),
        "weights": dict(rollout.weights),
        "metrics": {
            name: {"mean": float(v.mean()), "std": float(v.std())}
            for name, v in per_episode.items()
        },
        "set_metrics": set_metrics(rollout, seed=seed),
        "prompt_swap": prompt_swap,
    }
    report = _canonical(report)
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
    model: Any,
    env_or_config: Any,
    n_episodes: int,
    seed: int,
    **kwargs: Any,
) -> dict[str, Any]:
    """The counterfactual score with prompts swapped between episodes (same tasks)."""
    perm = swap_permutation([t.kind for t in rollout.tasks])
    swapped, *_ = evaluation_rollout(
        model, env_or_config, n_episodes, seed, prompt_permutation=perm, **kwargs
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


def _canonical(obj: Any) -> Any:
    """Plain JSON types with floats rounded to 7 significant digits (NaN/inf -> None)."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
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
    return json.dumps(_canonical(report), sort_keys=True, indent=2, allow_nan=False) + "\n"


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


# --------------------------------------------------------------------------- stability


def _stats(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"mean": None, "std": None, "variance": None}
    # Across seeds: the sample variance (ddof=1), undefined for one run.
    var = float(arr.var(ddof=1)) if arr.size > 1 else None
    return {
        "mean": float(arr.mean()),
        "std": None if var is None else math.sqrt(var),
        "variance": var,
    }


def steps_to_fraction(history: Sequence[Sequence[float]], fraction: float) -> float | None:
    """The first timestep at which the score reached ``fraction`` of the final score.

    :param history: ``[[timesteps, score], ...]`` in training order; the last score is final.
    :param fraction: e.g. 0.9 for 90 %.
    :return: the timestep, or None for an empty history.
    """
    if not history:
        return None
    final = float(history[-1][1])
    goal = fraction * final
    for t, score in history:
        if float(score) >= goal:
            return float(t)
    return float(history[-1][0])


def stability_summary(
    runs: Sequence[str | os.PathLike[str] | Mapping[str, Any]],
    *,
    metric: str = "reward_total",
    fractions: Sequence[float] = (0.5, 0.9),
) -> dict[str, Any]:
    """Summarize several runs' evaluation reports (typically one per training seed).

    :param runs: report paths or dicts (from :func:`evaluate_unigen` or
        :class:`~unigen_sb3.callbacks.UniGenEvalCallback`, whose ``history`` holds the
        learning curve ``[[timesteps, mean R_total], ...]``).
    :param metric: the score in ``metrics`` to compare across runs.
    :param fractions: for each ``X``, the steps each run's learning curve (its ``history``,
        which is always mean R_total, whatever ``metric`` is) took to reach ``X`` times the
        curve's final value (first history point at or above it).
    :return: ``{"n_runs", "metric", "seeds", "final": {"per_run", "mean", "std", "variance"},
        "within_run_std": {"per_run", "mean"}, "episode_length": {"per_run", "mean", "std",
        "variance", "cv", "mean_within_run_std"}, "steps_to_fraction": {"<X>": {"per_run",
        "mean", "median", "n_runs_with_history"}}}``. Across-run std/variance use ddof=1
        (None for a single run); ``cv`` is std / mean of the runs' mean episode lengths.
    :raises ValueError: for no runs, a report without ``metric``, or a fraction outside (0, 1].
    """
    if len(runs) == 0:
        raise ValueError("stability_summary needs at least one run")
    for x in fractions:
        if not 0.0 < float(x) <= 1.0:
            raise ValueError(f"fraction {x!r} must be in (0, 1]")
    reports = [load_report(r) for r in runs]
    for k, rep in enumerate(reports):
        if metric not in rep["metrics"]:
            raise ValueError(f"run {k} has no metric {metric!r}; it has {sorted(rep['metrics'])}")
    finals = [float(rep["metrics"][metric]["mean"]) for rep in reports]
    within = [float(rep["metrics"][metric]["std"]) for rep in reports]
    lengths = [
        float(rep["metrics"]["episode_length"]["mean"])
        for rep in reports
        if "episode_length" in rep["metrics"]
    ]
    length_within = [
        float(rep["metrics"]["episode_length"]["std"])
        for rep in reports
        if "episode_length" in rep["metrics"]
    ]
    length_stats = _stats(lengths)
    length_mean = length_stats["mean"]
    length_std = length_stats["std"]
    cv = (
        length_std / length_mean
        if length_std is not None and length_mean not in (None, 0.0)
        else None
    )
    steps: dict[str, Any] = {}
    for x in fractions:
        per_run = [steps_to_fraction(rep.get("history") or [], float(x)) for rep in reports]
        known = [s for s in per_run if s is not None]
        steps[f"{float(x):g}"] = {
            "per_run": per_run,
            "mean": float(np.mean(known)) if known else None,
            "median": float(np.median(known)) if known else None,
            "n_runs_with_history": len(known),
        }
    summary = {
        "n_runs": len(reports),
        "metric": metric,
        "seeds": [rep.get("seed") for rep in reports],
        "final": {"per_run": finals, **_stats(finals)},
        "within_run_std": {"per_run": within, "mean": float(np.mean(within))},
        "episode_length": {
            "per_run": lengths,
            **length_stats,
            "cv": cv,
            "mean_within_run_std": float(np.mean(length_within)) if length_within else None,
        },
        "steps_to_fraction": steps,
    }
    return dict(_canonical(summary))
