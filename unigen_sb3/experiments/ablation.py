"""Ablations: drop R_edit / R_consistency, a weight grid, each over N seeds.

Every variant is trained with its own weights and *scored* with the base config's weights
(``evaluation.weights``), so ``reward_total`` is one yardstick across variants; the
per-component metrics are weight-free anyway.

Every (variant, seed) run is one task of an executor (:mod:`unigen_sb3.experiments.
executors`: ``local``, ``processes`` or ``ray``); the summary is built afterwards from the
runs' ``eval.json`` files in the plan's order, so it is the same whichever executor ran them.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unigen_sb3.configs.loader import load_config, load_yaml
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig, config_to_dict
from unigen_sb3.experiments.executors import RunOutcome, RunTask, check_executor, execute
from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.rewards.unifier import validate_weights
from unigen_sb3.utils import atomic_write_text

__all__ = [
    "AblationError",
    "ablation_variants",
    "run_ablation",
    "run_threads",
    "summarize_runs",
    "variant_overrides",
]


class AblationError(RuntimeError):
    """Runs of an ablation failed; the others finished, and no ``ablation.json`` was written.

    :param failures: the failed runs' outcomes (label, run directory, error, traceback).
    :param n_runs: how many runs the ablation has.
    """

    def __init__(self, failures: list[RunOutcome], n_runs: int) -> None:
        self.failures = failures
        lines = [
            f"{o.label} ({o.run_dir}"
            + (f", on {o.host} pid {o.pid}" if o.host else "")
            + f"): {o.error}"
            for o in failures
        ]
        super().__init__(
            f"{len(failures)} of {n_runs} runs failed, so ablation.json was not written (a "
            "summary without them would not be the ablation asked for); the other runs are "
            "kept, and running the same command again retries only the failed ones:\n  "
            + "\n  ".join(lines)
        )


#: The folder of an ablation where runs of one seed share their behaviour cloning
#: (``training.warm_start``: the cloning does not depend on the reward).
WARM_START_CACHE = "warm_start_cache"


def _name(weights: dict[str, float]) -> str:
    return "w_" + "_".join(f"{n[0]}{weights[n]:.3g}" for n in COMPONENT_NAMES)


def variant_overrides(config: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """The settings each variant changes besides its weights: ``ablation.variants`` entries'
    ``{dotted.key: value}``; ``{}`` for ``full``, the drops and the grid.

    :param config: the base config.
    :return: variant name -> overrides, for every name :func:`ablation_variants` returns.
    """
    return _overrides_of(config, ablation_variants(config))


def _overrides_of(
    config: ExperimentConfig, variants: list[tuple[str, dict[str, float]]]
) -> dict[str, dict[str, Any]]:
    return {name: dict(config.ablation.variants.get(name, {})) for name, _weights in variants}


def ablation_variants(config: ExperimentConfig) -> list[tuple[str, dict[str, float]]]:
    """The variants ``ablate`` runs: ``full``, ``no_<component>`` per drop, the grid, then
    the named ``ablation.variants``.

    Dropping a component sets its weight to 0 and rescales the others to sum 1. Grid entries
    are named ``w_q<quality>_e<edit>_c<consistency>`` with 3 significant digits; two entries
    (or two drops) that get the same name are refused, never silently merged. A named variant
    (``ablation.variants``, e.g. ``no_shaping: {reward.shaping.enabled: false}``) trains the
    base config with its dotted keys set; its weights are the base weights unless it sets
    ``reward.weights``. Every key must be one the config accepts, checked here.

    :param config: the base config.
    :return: ``(name, weights)`` pairs, names unique.
    :raises ConfigError: if a drop leaves no positive weight, a dropped component is the
        enabled shaping potential (the variant would still learn from it), or two variants
        get the same name.
    """
    shaping = config.reward.shaping
    if shaping.enabled and shaping.potential in config.ablation.drop:
        comp = shaping.potential
        raise ConfigError(
            "ablation.drop",
            f"drops {comp!r}, but reward.shaping is enabled with potential={comp!r}: the "
            f"no_{comp} variant would still learn from R_{comp} through the shaping term "
            f"scale * (gamma * Phi(s') - Phi(s)), Phi = the normalized {comp} component, so it "
            f"would not ablate {comp!r}; remove {comp!r} from ablation.drop, set "
            "reward.shaping.potential to a component that is not dropped, or set "
            "reward.shaping.enabled=false",
        )
    base = config.reward.effective_weights()
    variants = [("full", base)]
    origins = {"full": "the base weights (reward.weights)"}
    for i, comp in enumerate(config.ablation.drop):
        name = f"no_{comp}"
        if name in origins:
            raise ConfigError(
                f"ablation.drop[{i}]",
                f"{comp!r} is listed twice (also {origins[name]}); list each component once",
            )
        dropped = {**base, comp: 0.0}
        try:
            variants.append((name, validate_weights(dropped, normalize=True)))
        except ValueError as exc:
            raise ConfigError(
                "ablation.drop", f"dropping {comp!r} leaves no weight: {exc}"
            ) from exc
        origins[name] = f"ablation.drop[{i}] = {comp!r}"
    for i, weights in enumerate(config.ablation.weight_grid):
        name = _name(weights)
        here = f"ablation.weight_grid[{i}] = {dict(weights)}"
        if name in origins:
            how = (
                "the same weights; remove one of them"
                if any(n == name and dict(w) == dict(weights) for n, w in variants)
                else "distinct weights with the same 3-significant-digit name; make them "
                "differ within 3 significant digits (each is a folder OUT/<name>/)"
            )
            raise ConfigError(
                f"ablation.weight_grid[{i}]",
                f"{here} and {origins[name]} are both named {name!r}: {how}",
            )
        variants.append((name, dict(weights)))
        origins[name] = here
    for name, overrides in config.ablation.variants.items():
        here = f"ablation.variants.{name}"
        if name in origins:
            raise ConfigError(
                here, f"the name {name!r} is taken by {origins[name]}; choose another name"
            )
        changed = _apply_variant(config_to_dict(config), name, overrides)
        variants.append((name, changed.reward.effective_weights()))
        origins[name] = here
    return variants


def _apply_variant(data: dict[str, Any], name: str, overrides: dict[str, Any]) -> ExperimentConfig:
    """``data`` with the variant's dotted keys set, validated (errors name the variant)."""
    out = json.loads(json.dumps(data))  # deep copy of plain values
    for key, value in overrides.items():
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                raise ConfigError(
                    f"ablation.variants.{name}.{key}",
                    f"{'.'.join(parts[: i + 1])!r} is not a mapping of the config, so {key!r} "
                    "is not a key it has",
                )
            node = child
        if parts[-1] not in node:
            raise ConfigError(
                f"ablation.variants.{name}.{key}",
                f"the config has no key {key!r}; accepted keys under "
                f"{'.'.join(parts[:-1]) or 'the root'}: {sorted(node)}",
            )
        node[parts[-1]] = value
    try:
        return load_config(out)
    except ConfigError as exc:
        raise ConfigError(
            f"ablation.variants.{name}", f"the variant's config is refused: {exc}"
        ) from None


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


#: Config keys that do not change what one run trains or how it is scored: the ablation and
#: sweep plans (a new grid entry or seed keeps the finished runs), the checkpoint interval
#: (as train --resume allows) and the progress bar.
_REUSE_IGNORED_PREFIXES = ("ablation.", "sweep.")
_REUSE_IGNORED_KEYS = (
    "training.progress_bar",
    "training.checkpoint_freq",
    "training.torch_threads",
)


def run_threads(config: ExperimentConfig) -> int:
    """The torch threads of each ablation run: ``training.torch_threads``, else
    ``ablation.num_cpus`` rounded down (at least 1).

    The same under every executor: torch's float sums depend on its thread count (the last
    digits of a metric change, about 1e-7), so a run's numbers must not depend on how many
    cores the machine that ran it had.
    """
    threads = config.training.torch_threads
    return threads if threads is not None else max(1, int(config.ablation.num_cpus))


def _variant_config(
    base: dict[str, Any],
    weights: dict[str, float],
    base_weights: dict[str, float],
    seed: int,
    overrides: dict[str, Any] | None = None,
    name: str = "",
) -> ExperimentConfig:
    data = json.loads(json.dumps(base))  # deep copy of plain values
    if overrides:
        data = config_to_dict(_apply_variant(data, name, overrides))
    data["seed"] = seed
    data["reward"]["weights"] = weights
    data["reward"]["normalize_weights"] = False
    if data["evaluation"]["weights"] is None:
        data["evaluation"]["weights"] = base_weights
    if data["training"]["torch_threads"] is None:  # see run_threads
        data["training"]["torch_threads"] = max(1, int(data["ablation"]["num_cpus"]))
    return load_config(data)


def _check_existing_run(run_path: Path, variant: ExperimentConfig) -> None:
    """Refuse a run folder whose saved config is not ``variant``'s (see :func:`run_ablation`).

    :raises ConfigError: naming the run folder and the keys that differ.
    :raises FileExistsError: for an ``eval.json`` without a ``config.yaml``.
    """
    from unigen_sb3.experiments.runner import _check_resume_config, _config_changes

    config_path = run_path / "config.yaml"
    hint = f"choose a new --out (ablate has no --overwrite), or delete {run_path} to retrain it"
    if not (run_path / "eval.json").exists():
        if config_path.exists():  # an interrupted run: train(resume=True) continues it
            try:
                _check_resume_config(load_yaml(config_path), config_to_dict(variant))
            except ConfigError as exc:
                raise ConfigError(
                    exc.path,
                    f"{run_path} holds an unfinished run that ablate would resume, "
                    f"but its config differs: {exc.message}; {hint}",
                ) from None
        return
    if not config_path.exists():
        raise FileExistsError(
            f"{run_path} holds an eval.json but no config.yaml, so whether it is this "
            f"variant's run cannot be checked; {hint}"
        )
    try:
        saved = load_config(config_path)
    except ConfigError as exc:
        raise ConfigError(
            exc.path, f"{config_path} (a finished run ablate would reuse): {exc.message}; {hint}"
        ) from None
    changed, details = _config_changes(
        config_to_dict(saved),
        config_to_dict(variant),
        lambda key: key in _REUSE_IGNORED_KEYS or key.startswith(_REUSE_IGNORED_PREFIXES),
    )
    if changed:
        raise ConfigError(
            changed[0],
            f"{run_path} holds a finished run (eval.json) of another config; these keys differ "
            f"from its config.yaml: {details}; reusing it would report stale results: {hint}",
        )


def run_ablation(
    config: ExperimentConfig,
    out: str | Path,
    *,
    executor: str = "local",
    address: str | None = None,
    max_parallel: int | None = None,
    progress: Callable[[str], None] | None = None,
    on_result: Callable[[RunOutcome], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate every variant for ``ablation.n_seeds`` seeds; write ``ablation.json``.

    Runs land in ``OUT/<variant>/seed_<seed>/``; each is one task of ``executor`` (see
    :mod:`unigen_sb3.experiments.executors`), trained with :func:`run_threads` torch threads.
    Re-running ``ablate`` on the same ``--out`` finishes an interrupted or partly failed
    ablation: a run whose ``eval.json`` exists is kept when its ``config.yaml`` equals the
    run's config (keys under ``ablation.`` and ``sweep.``, ``training.checkpoint_freq``,
    ``training.progress_bar`` and ``training.torch_threads`` may differ), and an unfinished
    one is resumed. A run folder of another config is refused before anything is trained.
    ``ablation.json`` is built from the ``eval.json`` files in the plan's order, so it is the
    same whichever executor ran the runs; it is written only when every run finished.

    :param config: the base config.
    :param out: the ablation folder (on a cluster: on a filesystem every worker shares).
    :param executor: ``local`` (one after another, here), ``processes`` or ``ray``.
    :param address: the Ray cluster to join (``"auto"``, ``"HOST:PORT"``); ``ray`` only.
    :param max_parallel: runs at once (``processes``, ``ray``); None = the executor's default.
    :param progress: called with a run's label as it starts (is handed to a worker).
    :param on_result: called with each run's outcome as it ends; runs finished by an earlier
        invocation are reported first, with ``reused=True``.
    :return: the ``ablation.json`` content.
    :raises ConfigError: for a config problem or a run folder of another config in ``out``,
        before any training.
    :raises ExecutorError: for executor settings that cannot work (Ray missing or
        unreachable...), before any training.
    :raises AblationError: when runs failed (after every other run finished), naming each
        with its error; ``ablation.json`` is not written.
    :raises KeyboardInterrupt: on Ctrl-C / SIGTERM / SIGHUP, after the runs in flight saved.
    """
    from unigen_sb3.experiments.runner import check_experiment

    check_executor(executor, address, max_parallel)
    variants = ablation_variants(config)
    overrides = _overrides_of(config, variants)
    check_experiment(config)
    out = Path(out)
    base = config_to_dict(config)
    base_weights = config.reward.effective_weights()
    seeds = [(config.seed + k) % 2**32 for k in range(config.ablation.n_seeds)]
    plan: list[tuple[str, dict[str, float], list[tuple[Path, ExperimentConfig]]]] = []
    for name, weights in variants:
        runs = []
        for seed in seeds:
            run_path = out / name / f"seed_{seed}"
            variant = _variant_config(base, weights, base_weights, seed, overrides[name], name)
            _check_existing_run(run_path, variant)
            runs.append((run_path, variant))
        if overrides[name]:  # a variant's own settings must train too, refused up front
            check_experiment(runs[0][1])
        plan.append((name, weights, runs))
    out.mkdir(parents=True, exist_ok=True)
    argv = tuple(sys.argv)
    tasks = []
    for name, _weights, planned in plan:
        for run_path, variant in planned:
            label = f"{name} seed={variant.seed}"
            if (run_path / "eval.json").exists():
                if on_result is not None:
                    on_result(RunOutcome(label, str(run_path), "completed", reused=True))
                continue
            tasks.append(
                RunTask(
                    label,
                    str(run_path.resolve()),
                    config_to_dict(variant),
                    argv,
                    warm_start_cache=str((out / WARM_START_CACHE).resolve()),
                )
            )
    outcomes = execute(
        tasks,
        executor,
        address=address,
        max_parallel=max_parallel,
        num_cpus=config.ablation.num_cpus,
        num_gpus=config.ablation.num_gpus,
        on_start=None if progress is None else lambda task: progress(task.label),
        on_result=on_result,
    )
    failures = [o for o in outcomes if o.status != "completed"]
    failures += [
        _missing_eval(o)
        for o in outcomes
        if o.status == "completed" and not (Path(o.run_dir) / "eval.json").is_file()
    ]
    if failures:
        raise AblationError(failures, sum(len(p[2]) for p in plan))
    summary: dict[str, Any] = {"schema": 1, "seeds": seeds, "variants": {}}
    for name, weights, planned in plan:
        evals, runs_done = [], []
        for run_path, _variant in planned:
            evals.append(json.loads((run_path / "eval.json").read_text("utf-8")))
            runs_done.append(str(run_path.relative_to(out)))
        summary["variants"][name] = {
            "weights": weights,
            "overrides": overrides[name],
            "runs": runs_done,
            "metrics": summarize_runs(evals),
        }
    atomic_write_text(out / "ablation.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _missing_eval(outcome: RunOutcome) -> RunOutcome:
    """A run its worker finished whose ``eval.json`` this process cannot see."""
    return RunOutcome(
        outcome.label,
        outcome.run_dir,
        "failed",
        error=(
            f"FileNotFoundError: {outcome.host} (pid {outcome.pid}) finished this run, but its "
            f"eval.json is not in {outcome.run_dir} here: --out must be a folder every worker "
            "and this machine share (the same path on a shared filesystem)"
        ),
        host=outcome.host,
        pid=outcome.pid,
    )
