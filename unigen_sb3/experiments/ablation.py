"""Ablations: drop R_edit / R_consistency, a weight grid, each over N seeds.

Every variant is trained with its own weights and *scored* with the base config's weights
(``evaluation.weights``), so ``reward_total`` is one yardstick across variants; the
per-component metrics are weight-free anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unigen_sb3.configs.loader import load_config
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig, config_to_dict
from unigen_sb3.rewards.normalizers import COMPONENT_NAMES
from unigen_sb3.rewards.unifier import validate_weights
from unigen_sb3.utils import atomic_write_text

__all__ = ["ablation_variants", "run_ablation", "summarize_runs"]


def _name(weights: dict[str, float]) -> str:
    return "w_" + "_".join(f"{n[0]}{weights[n]:.3g}" for n in COMPONENT_NAMES)


def ablation_variants(config: ExperimentConfig) -> list[tuple[str, dict[str, float]]]:
    """The variants ``ablate`` runs: ``full``, ``no_<component>`` per drop, then the grid.

    Dropping a component sets its weight to 0 and rescales the others to sum 1.

    :param config: the base config.
    :return: ``(name, weights)`` pairs, names unique.
    :raises ConfigError: if a drop leaves no positive weight.
    """
    base = config.reward.effective_weights()
    variants = [("full", base)]
    for comp in config.ablation.drop:
        dropped = {**base, comp: 0.0}
        try:
            variants.append((f"no_{comp}", validate_weights(dropped, normalize=True)))
        except ValueError as exc:
            raise ConfigError(
                "ablation.drop", f"dropping {comp!r} leaves no weight: {exc}"
            ) from exc
    for weights in config.ablation.weight_grid:
        variants.append((_name(weights), dict(weights)))
    seen: set[str] = set()
    unique = []
    for name, w in variants:
        if name not in seen:
            seen.add(name)
            unique.append((name, w))
    return unique


def _mean_std(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = math.fsum(values) / n
    # Sample std (ddof=1): the spread across seeds, 0 for a single seed.
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"mean": mean, "std": math.sqrt(var), "var": var, "n": n}


def summarize_runs(evals: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Across-seed mean, std (ddof=1) and variance of each metric's per-run mean.

    :param evals: ``eval.json`` dicts of runs that differ only in seed.
    :return: metric -> ``{"mean", "std", "var", "n"}``.
    """
    out: dict[str, dict[str, float]] = {}
    if not evals:
        return out
    keys = [k for k in evals[0].get("metrics", {}) if all(k in e.get("metrics", {}) for e in evals)]
    for key in keys:
        vals = []
        for e in evals:
            v = e["metrics"][key]
            v = v.get("mean") if isinstance(v, dict) else v
            if isinstance(v, int | float) and math.isfinite(v):
                vals.append(float(v))
        if vals:
            out[key] = _mean_std(vals)
    return out


def run_ablation(
    config: ExperimentConfig,
    out: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate every variant for ``ablation.n_seeds`` seeds; write ``ablation.json``.

    Runs land in ``OUT/<variant>/seed_<seed>/``; a run whose ``eval.json`` exists is kept,
    so re-running ``ablate`` on the same ``--out`` finishes an interrupted ablation.

    :param config: the base config.
    :param out: the ablation folder.
    :param progress: called with a label before each run (e.g. to advance a progress bar).
    :return: the ``ablation.json`` content.
    """
    from unigen_sb3.experiments.runner import check_experiment, train

    check_experiment(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = config_to_dict(config)
    base_weights = config.reward.effective_weights()
    seeds = [(config.seed + k) % 2**32 for k in range(config.ablation.n_seeds)]
    summary: dict[str, Any] = {"schema": 1, "seeds": seeds, "variants": {}}
    for name, weights in ablation_variants(config):
        evals, runs = [], []
        for seed in seeds:
            run_path = out / name / f"seed_{seed}"
            if progress is not None:
                progress(f"{name} seed={seed}")
            eval_path = run_path / "eval.json"
            if not eval_path.exists():
                data = json.loads(json.dumps(base))  # deep copy of plain values
                data["seed"] = seed
                data["reward"]["weights"] = weights
                data["reward"]["normalize_weights"] = False
                if data["evaluation"]["weights"] is None:
                    data["evaluation"]["weights"] = base_weights
                variant = load_config(data)
                resume = (run_path / "config.yaml").exists()
                result = train(variant, run_path, resume=resume)
                if result.interrupted:
                    raise KeyboardInterrupt
            evals.append(json.loads(eval_path.read_text("utf-8")))
            runs.append(str(run_path.relative_to(out)))
        summary["variants"][name] = {
            "weights": weights,
            "runs": runs,
            "metrics": summarize_runs(evals),
        }
    atomic_write_text(out / "ablation.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
