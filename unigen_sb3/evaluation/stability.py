"""Stability across runs: summaries of several evaluation reports (typically one per seed)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from unigen_sb3.evaluation.report import canonical, load_report

__all__ = ["stability_summary", "steps_to_fraction"]


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
    return dict(canonical(summary))
