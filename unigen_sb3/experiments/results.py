"""The published results page: ``docs/results.md`` and its plots, from an evidence folder.

An evidence folder (``make evidence``) holds a manifest, ``evidence.json``, and one folder per
suite, each written by :func:`~unigen_sb3.experiments.ablation.run_ablation`:

.. code-block:: text

    EVIDENCE/
      evidence.json          {"schema": 1, "quick", "command", "suites": [{"name", "role",
                              "main_variant", "task", "algorithm", "description", "budget"}]}
      <suite>/ablation.json  variants, their weights, overrides, runs and seeds (absent while
                              the suite is unfinished: the run folders found are read instead)
      <suite>/baselines.json {"Random" | "NoOp" | "Blind" | "Oracle": eval.json report} on the
                              held-out tasks every seed of the suite is evaluated on
      <suite>/before_after.png
      <suite>/<variant>/seed_<s>/  config.yaml, eval.json, eval_history.json, tb/

:func:`write_results` turns it into ``OUT/results.md`` and ``OUT/results/*.png``: the headline
tables (agents against Random, NoOp, Blind and Oracle, raw, normalized and as a margin over
Blind), the ablation with its stability numbers, a verdict for every claim of the design's
comparison table that the runs can test (:data:`CLAIM_RULE`), the PPO goals, learning curves
with seed bands, validation histories and the before/after grids. Everything is computed from
the files; the same folder gives the same markdown, byte for byte.

Example:
    >>> from unigen_sb3.experiments.results import write_results
    >>> write_results("runs/evidence", "docs")  # doctest: +SKIP
    PosixPath('docs/results.md')

The significance tests use SciPy (a dependency of scikit-image, so always installed); plots
need matplotlib (extra ``report``): without it the page is written without curves and a
:class:`UserWarning` says so, as :func:`~unigen_sb3.experiments.report.write_report` does.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from unigen_sb3.experiments.report import MATPLOTLIB_MISSING, _pyplot, _read_mapping, read_scalars
from unigen_sb3.utils import atomic_write_text

__all__ = [
    "ALPHA",
    "BASELINE_NAMES",
    "CLAIM_RULE",
    "MANIFEST_NAME",
    "Check",
    "Claim",
    "Evidence",
    "RunResult",
    "SuiteResult",
    "SuiteSpec",
    "VariantResult",
    "evidence_claims",
    "load_evidence",
    "metric_value",
    "normalized_score",
    "read_manifest",
    "seed_band",
    "steps_to_score",
    "write_results",
]

#: The manifest of an evidence folder.
MANIFEST_NAME = "evidence.json"
#: The manifest schema this module reads.
MANIFEST_SCHEMA = 1
#: Parts a suite's ``role`` is made of (joined by ``+``, e.g. ``agent+ablation``).
ROLES = ("agent", "ablation")
#: Scripted baselines of ``baselines.json``, in table order.
BASELINE_NAMES = ("Random", "NoOp", "Blind", "Oracle")
#: Baselines that do not read the task's hidden target: an agent must beat each of them.
NON_PRIVILEGED = ("Random", "NoOp", "Blind")
#: Significance level of every test of :data:`CLAIM_RULE`.
ALPHA = 0.05
#: The normalized R_total the steps-to-threshold column waits for.
THRESHOLD_LEVEL = 0.7
#: The issue's goals for PPO: task -> normalized R_total to reach.
PPO_GOALS: dict[str, float] = {"edit": 0.9, "unified": 0.85}

#: Reward columns: eval.json metric -> title.
REWARD_COLUMNS: dict[str, str] = {
    "reward_total": "R_total",
    "reward_quality": "R_quality",
    "reward_edit": "R_edit",
    "reward_consistency": "R_consistency",
}
#: Evaluation-metric columns: eval.json metric (``metrics`` or ``set_metrics``) -> title.
METRIC_COLUMNS: dict[str, str] = {
    "lpips": "LPIPS ↓",
    "ssim": "SSIM",
    "psnr": "PSNR (dB)",
    "region_ssim": "region SSIM",
    "mask_iou": "mask IoU",
    "attribute_accuracy": "attr. acc.",
    "frechet_distance": "Fréchet ↓",
    "kid_mean": "KID ↓",
}
#: Key of :func:`metric_value` for the prompt-swap drop (``prompt_swap.drop``).
PROMPT_SWAP_DROP = "prompt_swap_drop"
#: Metrics where a lower value is better (the normalized score handles the sign itself).
LOWER_IS_BETTER = frozenset({"lpips", "frechet_distance", "kid_mean"})
#: TensorBoard tags of the learning curves: one value per finished training episode.
CURVE_TAGS: dict[str, str] = {
    "episode/total": "R_total",
    "episode/quality": "R_quality",
    "episode/edit": "R_edit",
    "episode/consistency": "R_consistency",
}
#: Variants the claims compare with the ablation suite's main variant. The separate-reward
#: agents are found by their weights (one positive component); these names are the fallback
#: when a suite does not record weights.
SEPARATE_REWARD_NAMES: dict[str, tuple[str, ...]] = {
    "quality": ("quality_only", "w_q1_e0_c0"),
    "edit": ("edit_only", "w_q0_e1_c0"),
}
NO_EDIT, NO_CONSISTENCY = "no_edit", "no_consistency"
NO_NORMALIZATION, NO_SHAPING = "no_normalization", "no_shaping"

SUPPORTED, REFUTED, NOT_TESTED, CONTEXT = "SUPPORTED", "REFUTED", "NOT TESTED", "context"
NOT_SUPPORTED = "NOT SUPPORTED"

#: The rule every verdict of the claims section follows (printed in the page).
CLAIM_RULE = (
    f"A check is SUPPORTED when the difference lies in the claimed direction and a two-sided "
    f"test over the per-seed numbers gives p < {ALPHA}, REFUTED when the difference is "
    f"significant (p < {ALPHA}) the other way, and NOT SUPPORTED when it is not significant "
    "(the numbers neither support nor refute the claim at this sample size). Tests: means: "
    "Welch's "
    "t-test (unequal variances); a mean against a baseline's one number: one-sample t-test; "
    "variances across seeds: F-test; steps to a threshold: Mann-Whitney U, a seed that never "
    "reached it ranked after every seed that did. A check needs at least 2 seeds on each side, "
    "else it is NOT TESTED, as is a check whose variant or baseline was not run. Two sides "
    "without any spread count as p = 0 when their numbers differ and p = 1 when equal. A claim "
    "is SUPPORTED when all its tested checks are, REFUTED when all are refuted, NOT SUPPORTED "
    "when none is supported (with how many were refuted), PARTLY SUPPORTED otherwise; "
    "context lines show numbers without a verdict."
)

# Markers of the n/a cells whose reason is a footnote.
_NO_SPAN = "n/a†"
_NO_BASELINES = "n/a‡"
_FOOTNOTES = {
    _NO_SPAN: "† Oracle equals Random on this metric, so the normalized score "
    "(R - Random) / (Oracle - Random) is undefined.",
    _NO_BASELINES: "‡ the suite has no usable baselines.json, so nothing is normalized.",
}


# --- manifest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteSpec:
    """One suite of the manifest.

    :param name: the suite's folder name.
    :param role: ``agent``, ``ablation`` or both joined by ``+``.
    :param main_variant: the variant that is the suite's agent.
    :param task: the env task (``unified``, ``edit``, ``generate``).
    :param algorithm: the RL algorithm (``PPO``, ``SAC``...).
    :param description: what the suite is for.
    :param budget: its training budget, in words.
    :param config: the config file it ran (optional).
    """

    name: str
    role: str
    main_variant: str
    task: str
    algorithm: str
    description: str = ""
    budget: str = ""
    config: str = ""

    @property
    def is_agent(self) -> bool:
        """Whether the main variant is a row of the headline tables."""
        return "agent" in self.role.split("+")

    @property
    def is_ablation(self) -> bool:
        """Whether every variant is a row of the ablation tables."""
        return "ablation" in self.role.split("+")


def _manifest_error(path: Path, key: str, seen: Any, accepted: str) -> ValueError:
    what = "is missing" if seen is _MISSING else f"is {seen!r}"
    return ValueError(f"{path}: key {key!r} {what}; accepted: {accepted}")


_MISSING = object()


def read_manifest(path: str | Path) -> tuple[bool, str, list[SuiteSpec]]:
    """Read and check an ``evidence.json``.

    :param path: the manifest file.
    :return: ``(quick, command, suites)``.
    :raises FileNotFoundError: if the file does not exist.
    :raises ValueError: naming the file, the key, the value seen and what is accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: an evidence folder holds {MANIFEST_NAME}")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path} is not readable JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}; accepted: a JSON object")
    schema = data.get("schema", _MISSING)
    if isinstance(schema, bool) or schema != MANIFEST_SCHEMA:
        raise _manifest_error(path, "schema", schema, str(MANIFEST_SCHEMA))
    quick = data.get("quick", _MISSING)
    if not isinstance(quick, bool):
        raise _manifest_error(path, "quick", quick, "true or false")
    command = data.get("command", _MISSING)
    if not isinstance(command, str) or not command.strip():
        raise _manifest_error(path, "command", command, "the command that made the folder")
    raw = data.get("suites", _MISSING)
    if not isinstance(raw, list) or not raw:
        raise _manifest_error(path, "suites", raw, "a non-empty list of suite objects")
    suites: list[SuiteSpec] = []
    for i, entry in enumerate(raw):
        where = f"suites[{i}]"
        if not isinstance(entry, dict):
            raise _manifest_error(path, where, entry, "an object with name, role, ...")
        values: dict[str, str] = {}
        for key in ("name", "role", "main_variant", "task", "algorithm"):
            value = entry.get(key, _MISSING)
            if not isinstance(value, str) or not value.strip():
                raise _manifest_error(path, f"{where}.{key}", value, "a non-empty string")
            values[key] = value
        for key in ("description", "budget", "config"):
            value = entry.get(key, "")
            if not isinstance(value, str):
                raise _manifest_error(path, f"{where}.{key}", value, "a string")
            values[key] = value
        name = values["name"]
        if "/" in name or "\\" in name or name.startswith("."):
            raise _manifest_error(path, f"{where}.name", name, "a plain folder name")
        if name in {s.name for s in suites}:
            raise _manifest_error(path, f"{where}.name", name, "a name no other suite has")
        parts = values["role"].split("+")
        if not set(parts) <= set(ROLES) or len(set(parts)) != len(parts):
            raise _manifest_error(
                path, f"{where}.role", values["role"], "'agent', 'ablation' or 'agent+ablation'"
            )
        suites.append(SuiteSpec(**values))
    return quick, command, suites


# --- the runs ------------------------------------------------------------------------------


def metric_value(report: Mapping[str, Any], key: str) -> float | None:
    """One number of an ``eval.json`` report: a metric's mean, a set metric, or the prompt-swap
    drop (key :data:`PROMPT_SWAP_DROP`).

    :param report: the report.
    :param key: ``reward_total``, ``lpips``, ``frechet_distance``, ``prompt_swap_drop``...
    :return: the number, or None when the report lacks it (or it is not finite).
    """
    value: Any = None
    if key == PROMPT_SWAP_DROP:
        swap = report.get("prompt_swap")
        value = swap.get("drop") if isinstance(swap, Mapping) else None
    else:
        metrics = report.get("metrics")
        entry = metrics.get(key) if isinstance(metrics, Mapping) else None
        if isinstance(entry, Mapping):
            value = entry.get("mean")
        else:
            sets = report.get("set_metrics")
            value = sets.get(key) if isinstance(sets, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class RunResult:
    """A finished run: its ``eval.json`` and the validation history of ``eval_history.json``.

    :param variant: the variant's name.
    :param seed: the training seed.
    :param path: the run directory.
    :param report: its ``eval.json``.
    :param history: ``[(timesteps, mean R_total on the validation tasks), ...]``, None when
        the run has no (readable) ``eval_history.json``.
    :param clone: ``clone_eval.json``: the cloned policy the run's RL started from, evaluated
        on the same test tasks (warm-started runs of ``make evidence``), else None.
    """

    variant: str
    seed: int
    path: Path
    report: dict[str, Any]
    history: tuple[tuple[float, float], ...] | None
    clone: dict[str, Any] | None = None

    def value(self, key: str) -> float | None:
        """:func:`metric_value` of the run's report."""
        return metric_value(self.report, key)


@dataclass
class VariantResult:
    """One variant of a suite and its finished runs, sorted by seed.

    :param name: the variant's name (its folder).
    :param weights: its training weights, None when unknown.
    :param overrides: the other settings it changes (``{dotted.key: value}``).
    :param runs: its finished runs.
    """

    name: str
    weights: dict[str, float] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        """The per-seed numbers of ``key`` (runs without it are left out)."""
        return [v for v in (r.value(key) for r in self.runs) if v is not None]


@dataclass
class SuiteResult:
    """A suite as found on disk.

    :param spec: its manifest entry.
    :param folder: its folder.
    :param seeds: the seeds it plans (``ablation.json``), else the seeds found.
    :param variants: name -> variant, the main variant first, the others sorted.
    :param baselines: ``baselines.json`` (one report per :data:`BASELINE_NAMES` entry it
        has), None when it is missing or unreadable.
    :param missing: what the page must list as missing.
    :param notes: other remarks on how it was read.
    """

    spec: SuiteSpec
    folder: Path
    seeds: list[int] = field(default_factory=list)
    variants: dict[str, VariantResult] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] | None = None
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def main(self) -> VariantResult | None:
        """The main variant, None when it has no finished run."""
        main = self.variants.get(self.spec.main_variant)
        return main if main is not None and main.runs else None

    def baseline(self, name: str, key: str) -> float | None:
        """A baseline's number (:func:`metric_value`), None when it is missing."""
        if self.baselines is None or name not in self.baselines:
            return None
        return metric_value(self.baselines[name], key)


@dataclass
class Evidence:
    """An evidence folder: the manifest and every suite as found.

    :param root: the folder.
    :param quick: whether it is a smoke run (``--quick``), not evidence.
    :param command: the command that made it.
    :param suites: the suites, in manifest order.
    """

    root: Path
    quick: bool
    command: str
    suites: list[SuiteResult]

    def suite(self, name: str) -> SuiteResult | None:
        """The suite called ``name``, None when the manifest has none."""
        return next((s for s in self.suites if s.spec.name == name), None)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON file holding a mapping. :raises ValueError: saying what is wrong with it."""
    return _read_mapping(path, json.loads)


def _read_report(path: Path) -> dict[str, Any]:
    """An ``eval.json``-schema report. :raises ValueError: without a ``metrics`` table."""
    report = _read_json(path)
    if not isinstance(report.get("metrics"), dict):
        raise ValueError(f"{path.name} has no 'metrics' table")
    return report


def _seed_of(run: Path) -> int | None:
    match = re.fullmatch(r"seed_(\d+)", run.name)
    if match:
        return int(match.group(1))
    try:
        seed = yaml.safe_load((run / "config.yaml").read_text("utf-8")).get("seed")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _read_history(path: Path) -> tuple[tuple[float, float], ...]:
    points = _read_json(path).get("history")
    if not isinstance(points, list):
        raise ValueError(f"{path.name} has no 'history' list")
    out = []
    for point in points:
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in point)
        ):
            raise ValueError(f"{path.name}: history point {point!r} is not [timesteps, score]")
        out.append((float(point[0]), float(point[1])))
    return tuple(out)


def _read_run(suite: SuiteResult, variant: str, run: Path) -> RunResult | None:
    """The run, or None after noting why it is missing."""
    label = f"{variant}/{run.name}"
    if not (run / "eval.json").is_file():
        state = "unfinished: no eval.json" if run.is_dir() else "not started"
        suite.missing.append(f"run {label} ({state})")
        return None
    try:
        report = _read_report(run / "eval.json")
    except ValueError as exc:
        suite.missing.append(f"run {label} (unreadable: {exc})")
        return None
    seed = _seed_of(run)
    if seed is None:
        suite.missing.append(f"run {label} (no seed: neither seed_<n> nor config.yaml's seed)")
        return None
    history = None
    if (run / "eval_history.json").is_file():
        try:
            history = _read_history(run / "eval_history.json")
        except ValueError as exc:
            suite.notes.append(f"{label}: {exc}; its validation history is left out")
    clone = None
    if (run / CLONE_EVAL).is_file():
        try:
            clone = _read_report(run / CLONE_EVAL)
        except ValueError as exc:
            suite.notes.append(f"{label}: {exc}; the cloned policy's score is left out")
            clone = None
    return RunResult(variant, seed, run, report, history, clone)


def _weights_of(run: Path) -> dict[str, float] | None:
    try:
        weights = yaml.safe_load((run / "config.yaml").read_text("utf-8"))["reward"]["weights"]
        return {str(k): float(v) for k, v in weights.items()}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, LookupError, TypeError, AttributeError):
        return None
    except ValueError:  # a weight that is not a number
        return None


def _load_from_summary(suite: SuiteResult, summary: dict[str, Any]) -> None:
    seeds = summary["seeds"]
    variants = summary["variants"]
    if not isinstance(seeds, list) or not isinstance(variants, dict):
        raise TypeError("'seeds' must be a list and 'variants' an object")
    suite.seeds = sorted(int(s) for s in seeds)
    for name, entry in variants.items():
        weights = entry.get("weights")
        overrides = entry.get("overrides") or {}
        variant = VariantResult(
            str(name),
            {str(k): float(v) for k, v in weights.items()} if isinstance(weights, dict) else None,
            dict(overrides) if isinstance(overrides, dict) else {},
        )
        for rel in entry["runs"]:
            run = _read_run(suite, variant.name, suite.folder / str(rel))
            if run is not None:
                variant.runs.append(run)
        variant.runs.sort(key=lambda r: r.seed)
        suite.variants[variant.name] = variant


def _load_from_folders(suite: SuiteResult) -> None:
    """An unfinished suite: every ``<variant>/seed_<s>`` folder found, the seeds' union."""
    found: dict[str, list[Path]] = {}
    for folder in sorted(p for p in suite.folder.iterdir() if p.is_dir()):
        runs = sorted(
            p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"seed_\d+", p.name)
        )
        if runs:
            found[folder.name] = runs
    seeds = sorted({int(r.name[5:]) for runs in found.values() for r in runs})
    suite.seeds = seeds
    for name, runs in found.items():
        variant = VariantResult(name, _weights_of(runs[0]))
        for seed in seeds:
            run = _read_run(suite, name, suite.folder / name / f"seed_{seed}")
            if run is not None:
                variant.runs.append(run)
        suite.variants[name] = variant


def _load_baselines(suite: SuiteResult) -> None:
    path = suite.folder / "baselines.json"
    if not path.is_file():
        suite.missing.append("baselines.json (no Random / NoOp / Blind / Oracle, no normalization)")
        return
    try:
        data = _read_json(path)
    except ValueError as exc:
        suite.missing.append(f"baselines.json (unreadable: {exc}; no normalization)")
        return
    found: dict[str, dict[str, Any]] = {}
    for key in sorted(data):
        # "Blind (best prompt-blind sequence)" is Blind: the first word names the baseline.
        name = str(key).split(" ")[0]
        report = data[key]
        if name in BASELINE_NAMES and isinstance(report, dict):
            if isinstance(report.get("metrics"), dict):
                found.setdefault(name, report)
    for name in BASELINE_NAMES:
        if name not in found:
            suite.missing.append(f"baseline {name} (not in baselines.json)")
    suite.baselines = found or None


def load_evidence(evidence_dir: str | Path) -> Evidence:
    """Read an evidence folder: the manifest (checked) and whatever its suites hold.

    Missing suites, variants, runs and baselines are tolerated and recorded in each
    :attr:`SuiteResult.missing`; a suite without ``ablation.json`` (unfinished) is read from the
    run folders found.

    :param evidence_dir: the folder holding :data:`MANIFEST_NAME`.
    :return: the evidence.
    :raises FileNotFoundError: if the manifest does not exist.
    :raises ValueError: for a malformed manifest (see :func:`read_manifest`).
    """
    root = Path(evidence_dir)
    quick, command, specs = read_manifest(root / MANIFEST_NAME)
    suites: list[SuiteResult] = []
    for spec in specs:
        suite = SuiteResult(spec, root / spec.name)
        suites.append(suite)
        if not suite.folder.is_dir():
            suite.missing.append(f"the whole suite (no folder {spec.name}/)")
            continue
        summary_path = suite.folder / "ablation.json"
        summary: Any = None
        if summary_path.is_file():
            try:
                summary = _read_json(summary_path)
                _load_from_summary(suite, summary)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                suite.variants.clear()
                suite.missing.clear()
                suite.notes[:] = [
                    f"ablation.json is malformed ({exc!r}); the run folders found were read"
                ]
                summary = None
        if summary is None:
            if not summary_path.is_file():
                suite.missing.append(
                    "ablation.json (the suite is unfinished: the run folders found were read; "
                    "runs never started cannot be listed)"
                )
            _load_from_folders(suite)
        _load_baselines(suite)
        if suite.main is None:
            suite.missing.append(f"main variant {spec.main_variant!r} (no finished run)")
        main = suite.variants.pop(spec.main_variant, None)
        rest = dict(sorted(suite.variants.items()))
        suite.variants = {spec.main_variant: main, **rest} if main is not None else rest
    return Evidence(root, quick, command, suites)


# --- numbers -------------------------------------------------------------------------------


def normalized_score(value: float, random: float, oracle: float) -> float | None:
    """``(value - random) / (oracle - random)``: 0 at Random, 1 at Oracle.

    :return: the score, None when Oracle equals Random (no scale to measure on).

    Example:
        >>> normalized_score(0.5, 0.25, 0.75)
        0.5
    """
    span = oracle - random
    if math.isclose(span, 0.0, abs_tol=1e-12):
        return None
    return (value - random) / span


def steps_to_score(history: Sequence[Sequence[float]], threshold: float) -> float:
    """The first timestep at which a validation history reached ``threshold``.

    :param history: ``[(timesteps, score), ...]`` in training order.
    :param threshold: the score to reach.
    :return: the timestep, ``math.inf`` when it never did.
    """
    for t, score in history:
        if float(score) >= threshold:
            return float(t)
    return math.inf


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1) across seeds; the std is None for one value."""
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def _var(values: Sequence[float]) -> float | None:
    _, std = _mean_std(values)
    return None if std is None else std * std


def seed_band(
    series: Sequence[Sequence[tuple[float, float]]], n_bins: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std across seeds of per-seed curves binned on one timestep grid.

    Each seed's points are averaged per bin (``(edge_i, edge_i+1]``, the first bin from 0),
    an empty bin carries the seed's last value forward; the band is over the seeds that have a
    value in that bin (std ddof=1, 0 with one seed).

    :param series: per seed, ``[(timesteps, value), ...]``; empty ones are ignored.
    :param n_bins: bins between 0 and the last timestep of any seed.
    :return: ``(bin end timesteps, mean, std)``, NaN where no seed has a value yet.
    :raises ValueError: if no seed has a point.
    """
    series = [s for s in series if len(s)]
    if not series:
        raise ValueError("seed_band needs at least one seed with a point")
    end = max(max(float(t) for t, _ in s) for s in series)
    edges = np.linspace(0.0, end if end > 0 else 1.0, n_bins + 1)
    rows = []
    for s in series:
        steps = np.asarray([float(t) for t, _ in s])
        values = np.asarray([float(v) for _, v in s])
        idx = np.clip(np.searchsorted(edges, steps, side="left") - 1, 0, n_bins - 1)
        sums = np.bincount(idx, values, minlength=n_bins)
        counts = np.bincount(idx, minlength=n_bins)
        row = np.full(n_bins, np.nan)
        row[counts > 0] = sums[counts > 0] / counts[counts > 0]
        for i in range(1, n_bins):
            if np.isnan(row[i]):
                row[i] = row[i - 1]
        rows.append(row)
    return (edges[1:], *_band(np.vstack(rows)))


def _band(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    have = (~np.isnan(arr)).sum(axis=0)
    filled = np.where(np.isnan(arr), 0.0, arr)
    mean = np.where(have > 0, filled.sum(axis=0) / np.maximum(have, 1), np.nan)
    dev = np.where(np.isnan(arr), 0.0, arr - mean) ** 2
    std = np.where(have > 1, np.sqrt(dev.sum(axis=0) / np.maximum(have - 1, 1)), 0.0)
    return mean, np.where(have > 0, std, np.nan)


def _history_band(
    histories: Sequence[Sequence[tuple[float, float]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validation histories on the union of their timesteps (linear in between, NaN outside)."""
    grid = np.asarray(sorted({t for h in histories for t, _ in h}))
    rows = []
    for h in histories:
        t = np.asarray([p[0] for p in h])
        v = np.asarray([p[1] for p in h])
        row = np.interp(grid, t, v)
        row[(grid < t.min()) | (grid > t.max())] = np.nan
        rows.append(row)
    return (grid, *_band(np.vstack(rows)))


# --- tests of the claims -------------------------------------------------------------------


def _p_exact(a: Sequence[float], b: Sequence[float]) -> float:
    return 1.0 if math.fsum(a) / len(a) == math.fsum(b) / len(b) else 0.0


def _welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy import stats

    va, vb = _var(a) or 0.0, _var(b) or 0.0
    if va + vb == 0.0:
        return _p_exact(a, b)
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _one_sample_p(a: Sequence[float], value: float) -> float:
    from scipy import stats

    mean, std = _mean_std(a)
    assert mean is not None and std is not None  # callers pass >= 2 values
    if std == 0.0:
        return 1.0 if mean == value else 0.0
    return float(stats.ttest_1samp(a, value).pvalue)


def _f_test_p(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy import stats

    va, vb = _var(a) or 0.0, _var(b) or 0.0
    if va == 0.0 or vb == 0.0:
        return 1.0 if va == vb else 0.0
    cdf = float(stats.f.cdf(va / vb, len(a) - 1, len(b) - 1))
    return min(1.0, 2.0 * min(cdf, 1.0 - cdf))


def _mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, bool]:
    """Two-sided p and whether ``a`` ranks lower than ``b`` (U of ``a`` below n_a n_b / 2)."""
    from scipy import stats

    if len(set(a) | set(b)) == 1:
        return 1.0, False
    result = stats.mannwhitneyu(a, b, alternative="two-sided")
    return float(result.pvalue), float(result.statistic) < len(a) * len(b) / 2


@dataclass(frozen=True)
class Check:
    """One line of a claim: what was compared, the numbers, and the verdict.

    :param text: the comparison with its numbers.
    :param verdict: ``SUPPORTED``, ``REFUTED``, ``NOT SUPPORTED``, ``NOT TESTED`` or
        ``context`` (no verdict).
    :param why: the test's outcome or why nothing was tested.
    """

    text: str
    verdict: str
    why: str = ""


@dataclass(frozen=True)
class Claim:
    """A row of the design's comparison table and its checks.

    :param title: the design choice.
    :param statement: what the design says.
    :param checks: the lines that test it.
    """

    title: str
    statement: str
    checks: tuple[Check, ...]

    @property
    def verdict(self) -> str:
        """``SUPPORTED`` (every tested check), ``REFUTED`` (every tested check refuted),
        ``NOT SUPPORTED`` (none supported; ``(k of n checks refuted)`` when some are),
        ``PARTLY SUPPORTED (k of n checks)`` or ``NOT TESTED`` (no check could be tested)."""
        tested = [c for c in self.checks if c.verdict in (SUPPORTED, REFUTED, NOT_SUPPORTED)]
        won = sum(c.verdict == SUPPORTED for c in tested)
        lost = sum(c.verdict == REFUTED for c in tested)
        if not tested:
            return NOT_TESTED
        if won == len(tested):
            return SUPPORTED
        if lost == len(tested):
            return REFUTED
        if won == 0:
            return NOT_SUPPORTED + (f" ({lost} of {len(tested)} checks refuted)" if lost else "")
        return f"PARTLY SUPPORTED ({won} of {len(tested)} checks)"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _decide(better: bool, p: float) -> tuple[str, str]:
    if better and p < ALPHA:
        return SUPPORTED, _p_text(p)
    if p < ALPHA:
        return REFUTED, f"{_p_text(p)}, the other way"
    return NOT_SUPPORTED, f"{_p_text(p)}: no significant difference"


def _too_few(a: Sequence[float], b: Sequence[float] | None = None) -> Check | None:
    sizes = [len(a)] if b is None else [len(a), len(b)]
    if min(sizes) < 2:
        have = " and ".join(map(str, sizes))
        return Check("", NOT_TESTED, f"needs >= 2 seeds on each side, has {have}")
    return None


def _mean_pm(values: Sequence[float]) -> str:
    return f"{_pm(values)} (n={len(values)})"


def _compare_means(
    label: str,
    a_name: str,
    a: Sequence[float],
    b_name: str,
    b: Sequence[float],
    *,
    context: bool = False,
) -> Check:
    """``a`` beats ``b`` on ``label`` (higher is better unless ``label`` is lower-better)."""
    lower = label in LOWER_IS_BETTER
    text = f"{label}{' (lower is better)' if lower else ''}: {a_name} {_mean_pm(a)} vs {b_name} "
    text += f"{_mean_pm(b)}"
    if not a or not b:
        return Check(text, NOT_TESTED, "a side reports no value")
    diff = math.fsum(a) / len(a) - math.fsum(b) / len(b)
    text += f", difference {_signed(diff)}"
    few = _too_few(a, b)
    if few is not None:
        return Check(text, NOT_TESTED, few.why)
    p = _welch_p(a, b)
    if context:
        return Check(text, CONTEXT, f"Welch {_p_text(p)}")
    verdict, why = _decide(diff < 0 if lower else diff > 0, p)
    return Check(text, verdict, f"Welch {why}")


def _compare_variances(a_name: str, a: Sequence[float], b_name: str, b: Sequence[float]) -> Check:
    """``a`` varies less across seeds than ``b`` (R_total)."""
    va, vb = _var(a), _var(b)
    text = (
        f"variance of R_total across seeds: {a_name} {_sig(va)} (n={len(a)}) vs {b_name} "
        f"{_sig(vb)} (n={len(b)})"
    )
    few = _too_few(a, b)
    if few is not None:
        return Check(text, NOT_TESTED, few.why)
    assert va is not None and vb is not None
    verdict, why = _decide(va < vb, _f_test_p(a, b))
    return Check(text, verdict, f"F-test {why}")


def _steps_text(steps: Sequence[float]) -> str:
    if not steps:
        return "no history"
    reached = sorted(s for s in steps if math.isfinite(s))
    if not reached:
        return f"never (0/{len(steps)} seeds reached it)"
    return f"median {_steps(float(np.median(reached)))} ({len(reached)}/{len(steps)} seeds)"


def _compare_steps(
    a_name: str, a: Sequence[float], b_name: str, b: Sequence[float], threshold: str
) -> Check:
    """``a`` reaches the threshold sooner than ``b``."""
    text = (
        f"timesteps to {threshold}: {a_name} {_steps_text(a)} vs {b_name} {_steps_text(b)}; "
        f"per seed {a_name} {_steps_list(a)}, {b_name} {_steps_list(b)}"
    )
    few = _too_few(a, b)
    if few is not None:
        return Check(text, NOT_TESTED, few.why + " with a validation history")
    p, sooner = _mann_whitney(a, b)
    verdict, why = _decide(sooner, p)
    return Check(text, verdict, f"Mann-Whitney {why}")


def _compare_to_baseline(
    a_name: str, a: Sequence[float], baseline: str, value: float | None
) -> Check:
    """``a``'s R_total beats a baseline's one number."""
    if value is None:
        return Check(f"R_total: {a_name} vs {baseline}", NOT_TESTED, f"{baseline} was not run")
    diff = math.fsum(a) / len(a) - value if a else 0.0
    text = f"R_total: {a_name} {_mean_pm(a)} vs {baseline} {_num(value)}"
    if not a:
        return Check(text, NOT_TESTED, f"{a_name} has no R_total")
    text += f", difference {_signed(diff)}"
    few = _too_few(a)
    if few is not None:
        return Check(text, NOT_TESTED, few.why)
    verdict, why = _decide(diff > 0, _one_sample_p(a, value))
    return Check(text, verdict, f"one-sample t-test {why}")


def _not_run(text: str, *names: str) -> Check:
    return Check(text, NOT_TESTED, "not run: " + ", ".join(f"variant {n!r}" for n in names))


def _threshold(suite: SuiteResult) -> float | None:
    """R_total at :data:`THRESHOLD_LEVEL` normalized, None without a Random-to-Oracle scale."""
    random = suite.baseline("Random", "reward_total")
    oracle = suite.baseline("Oracle", "reward_total")
    if random is None or oracle is None or oracle <= random:
        return None
    return random + THRESHOLD_LEVEL * (oracle - random)


def _variant_steps(suite: SuiteResult, variant: VariantResult) -> list[float]:
    threshold = _threshold(suite)
    if threshold is None:
        return []
    return [steps_to_score(r.history, threshold) for r in variant.runs if r.history is not None]


def _separate_reward_variant(suite: SuiteResult, component: str) -> str | None:
    """The variant trained on ``component`` alone: its weights have only that one positive
    (the first such by name), else one of :data:`SEPARATE_REWARD_NAMES`; None if none ran."""
    for name, v in suite.variants.items():
        w = v.weights
        if name == suite.spec.main_variant or not v.runs or not w:
            continue
        if w.get(component, 0.0) > 0 and all(x == 0 for k, x in w.items() if k != component):
            return name
    for name in SEPARATE_REWARD_NAMES[component]:
        found = suite.variants.get(name)
        if found is not None and found.runs and found.weights is None:
            return name
    return None


def _ablation_claims(suite: SuiteResult | None) -> list[Claim]:
    """Claims 1-4: the ablation suite's main variant against the variants that test them."""
    main_name = suite.spec.main_variant if suite is not None else "full"

    def variant(name: str) -> VariantResult | None:
        if suite is None:
            return None
        v = suite.variants.get(name)
        return v if v is not None and v.runs else None

    full = variant(main_name)

    def means(other: str, key: str, *, context: bool = False) -> Check:
        o = variant(other)
        if full is None or o is None:
            missing = [n for n, v in ((main_name, full), (other, o)) if v is None]
            return _not_run(f"{key}: {main_name} vs {other}", *missing)
        return _compare_means(
            key, main_name, full.values(key), other, o.values(key), context=context
        )

    unified: list[Check] = []
    for component, names in SEPARATE_REWARD_NAMES.items():
        other = _separate_reward_variant(suite, component) if suite is not None else None
        for key in ("reward_total", "reward_edit", "region_ssim", "mask_iou", "attribute_accuracy"):
            if other is None:
                unified.append(
                    Check(
                        f"{key}: {main_name} vs an agent trained on R_{component} alone",
                        NOT_TESTED,
                        f"not run: no variant whose weights are {component} alone (e.g. "
                        + " or ".join(repr(n) for n in names)
                        + ")",
                    )
                )
            else:
                unified.append(means(other, key))
    joint: list[Check] = []
    for other, dropped in ((NO_EDIT, "reward_edit"), (NO_CONSISTENCY, "reward_consistency")):
        joint += [means(other, dropped), means(other, "reward_total")]
        if full is not None and variant(other) is not None:  # the other components
            joint += [
                means(other, k, context=True)
                for k in REWARD_COLUMNS
                if k not in (dropped, "reward_total")
            ]

    def stability(other: str) -> list[Check]:
        o = variant(other)
        if full is None or o is None:
            missing = [n for n, v in ((main_name, full), (other, o)) if v is None]
            return [_not_run(f"variance of R_total: {main_name} vs {other}", *missing)]
        checks = [
            _compare_variances(
                main_name, full.values("reward_total"), other, o.values("reward_total")
            )
        ]
        cv = {v.name: _length_stats(v)[1] for v in (full, o)}
        checks.append(
            Check(
                f"episode-length cv across seeds: {main_name} {_num(cv[main_name])} vs {other} "
                f"{_num(cv[other])}",
                CONTEXT,
            )
        )
        return checks

    normalization = stability(NO_NORMALIZATION)
    shaping = stability(NO_SHAPING)
    shaped, unshaped = variant(main_name), variant(NO_SHAPING)
    level = f"{THRESHOLD_LEVEL:g} normalized R_total"
    if suite is None or shaped is None or unshaped is None:
        missing = [n for n, v in ((main_name, shaped), (NO_SHAPING, unshaped)) if v is None]
        shaping.append(_not_run(f"timesteps to {level}: {main_name} vs {NO_SHAPING}", *missing))
    elif _threshold(suite) is None:
        shaping.append(
            Check(
                f"timesteps to {level}",
                NOT_TESTED,
                "no Random-to-Oracle scale (baselines.json missing or Oracle <= Random)",
            )
        )
    else:
        shaping.append(
            _compare_steps(
                main_name,
                _variant_steps(suite, shaped),
                NO_SHAPING,
                _variant_steps(suite, unshaped),
                level,
            )
        )
    shaping.append(means(NO_SHAPING, "reward_total"))
    return [
        Claim(
            "Unified reward beats separate rewards",
            "Model design: one unified reward signal (R_total) for generation and editing, "
            "where prior methods rely on separate rewards.",
            tuple(unified),
        ),
        Claim(
            "Joint objective",
            "Objective focus: image quality, editing fidelity and cross-task consistency "
            "together (a variant trained without a component should lose it, and R_total).",
            tuple(joint),
        ),
        Claim(
            "Reward normalization reduces instability",
            "Training stability: reward normalization reduces instability.",
            tuple(normalization),
        ),
        Claim(
            "Potential-based shaping reduces instability and helps",
            "Training stability: potential-based shaping reduces instability.",
            tuple(shaping),
        ),
    ]


def _suite_claims(evidence: Evidence) -> list[Claim]:
    """Claims 5-8: the evaluation suite, backbones, reproducibility, open resources."""
    agents = [s for s in evidence.suites if s.spec.is_agent and s.main is not None]
    named = {
        "frechet_distance": "FID proxy (Fréchet distance of perceptual embeddings)",
        "lpips": "LPIPS",
        "ssim": "SSIM",
        "attribute_accuracy": "target accuracy (attribute accuracy)",
    }
    suite_checks = []
    for key, title in named.items():
        having = [
            s.spec.name for s in agents if s.main and len(s.main.values(key)) == len(s.main.runs)
        ]
        verdict = SUPPORTED if having else REFUTED
        where = ", ".join(having) if having else "no agent suite"
        suite_checks.append(
            Check(
                f"{title}: reported by {where}",
                verdict,
                "present in tables" if having else "absent from every agent suite's eval.json",
            )
        )
    ablations = [s for s in evidence.suites if s.spec.is_ablation and s.variants]
    shown = ", ".join(f"{s.spec.name} ({len(s.variants)} variants)" for s in ablations)
    suite_checks.append(
        Check(
            f"ablation results: {shown or 'none'}",
            SUPPORTED if ablations else REFUTED,
            "the ablation tables above" if ablations else "no ablation suite has runs",
        )
    )
    backbone: list[Check] = []
    found: dict[str, SuiteResult] = {}
    for algorithm in ("PPO", "SAC"):
        suite = next(
            (
                s
                for s in agents
                if s.spec.algorithm.upper() == algorithm and s.spec.task == "unified"
            ),
            None,
        )
        if suite is None or suite.main is None:
            backbone.append(Check(f"{algorithm} on unified", NOT_TESTED, "not run"))
            continue
        found[algorithm] = suite
        values = suite.main.values("reward_total")
        for baseline in NON_PRIVILEGED:
            backbone.append(
                _compare_to_baseline(
                    f"{algorithm} ({suite.spec.name})",
                    values,
                    baseline,
                    suite.baseline(baseline, "reward_total"),
                )
            )
    if len(found) == 2:
        ppo, sac = found["PPO"], found["SAC"]
        backbone.append(
            _compare_means(
                "normalized R_total",
                f"PPO ({ppo.spec.name})",
                _normalized_values(ppo, "reward_total"),
                f"SAC ({sac.spec.name})",
                _normalized_values(sac, "reward_total"),
                context=True,
            )
        )
    return [
        Claim(
            "Composite evaluation suite",
            "Evaluation suite: composite metrics (FID, LPIPS, SSIM, target accuracy) and "
            "ablation results.",
            tuple(suite_checks),
        ),
        Claim(
            "Backbone compatibility: PPO and SAC",
            "Backbone compatibility: designed for common RL algorithms (PPO, SAC); each must "
            "learn, i.e. beat every non-privileged baseline on the unified task.",
            tuple(backbone),
        ),
        Claim(
            "Deterministic seeds and reproducibility",
            "Reproducibility: clean code, deterministic seeds and config systems.",
            (
                Check(
                    "not a number of these suites",
                    NOT_TESTED,
                    "tested by tests/test_pretrained.py::"
                    "test_eval_pretrained_reproduces_the_shipped_eval_json (`unigen-sb3 eval "
                    "--pretrained unified` reproduces the shipped eval.json byte for byte) and "
                    "tests/test_cli.py::test_train_twice_gives_identical_eval_json (the same "
                    "config and seed train to the same eval.json)",
                ),
            ),
        ),
        Claim(
            "Open resources",
            "Open resources: open-source code and datasets.",
            (Check("not a property of runs", NOT_TESTED, "nothing to measure"),),
        ),
    ]


def evidence_claims(evidence: Evidence) -> list[Claim]:
    """Every claim of the design's comparison table, with its checks (see :data:`CLAIM_RULE`).

    Claims 1-4 compare the main variant of the first ablation suite with the agents trained on
    R_quality alone and on R_edit alone (separate rewards: the variants whose weights have one
    positive component), ``no_edit`` / ``no_consistency`` (joint objective),
    ``no_normalization`` and ``no_shaping``; a variant that was not run makes its checks
    NOT TESTED.

    :param evidence: from :func:`load_evidence`.
    :return: the claims in the table's order.
    """
    ablation = next((s for s in evidence.suites if s.spec.is_ablation), None)
    return [*_ablation_claims(ablation), *_suite_claims(evidence)]


# --- formatting ----------------------------------------------------------------------------


def _num(x: float | None) -> str:
    """3 decimals; tiny numbers (e.g. KID) in scientific notation; None -> ``n/a``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    x = float(x) + 0.0  # no "-0.000"
    if x != 0.0 and abs(x) < 5e-4:
        return f"{x:.2e}"
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text


def _sig(x: float | None) -> str:
    """3 significant digits (variances: small numbers whose digits matter)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{float(x) + 0.0:.3g}"


def _signed(x: float | None) -> str:
    text = _num(x)
    return text if text == "n/a" or text.startswith("-") else f"+{text}"


def _pm(values: Sequence[float]) -> str:
    mean, std = _mean_std(values)
    if mean is None:
        return "n/a"
    return _num(mean) if std is None else f"{_num(mean)} ± {_num(std)}"


def _steps(x: float) -> str:
    return "never" if not math.isfinite(x) else str(round(x))


def _steps_list(values: Sequence[float]) -> str:
    return "[" + ", ".join(_steps(v) for v in values) + "]"


def _md(text: str) -> str:
    """Text for a table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _footnotes(rows: Sequence[Sequence[str]]) -> list[str]:
    used = [mark for mark in _FOOTNOTES if any(mark in cell for row in rows for cell in row)]
    return [*(_FOOTNOTES[m] for m in used), ""] if used else []


def _normalized_values(suite: SuiteResult, key: str) -> list[float]:
    random, oracle = suite.baseline("Random", key), suite.baseline("Oracle", key)
    if suite.main is None or random is None or oracle is None:
        return []
    out = [normalized_score(v, random, oracle) for v in suite.main.values(key)]
    return [v for v in out if v is not None]


def _normalized_cell(suite: SuiteResult, values: Sequence[float], key: str) -> str:
    if suite.baselines is None:
        return _NO_BASELINES
    random, oracle = suite.baseline("Random", key), suite.baseline("Oracle", key)
    if random is None or oracle is None or not values:
        return "n/a"
    scores = [normalized_score(v, random, oracle) for v in values]
    if any(s is None for s in scores):
        return _NO_SPAN
    return _pm([s for s in scores if s is not None])


def _length_stats(variant: VariantResult) -> tuple[float | None, float | None, float | None]:
    """Episode length across seeds: (mean, cv, mean within-run std) from stability_summary."""
    from unigen_sb3.evaluation import stability_summary

    reports = [{**r.report, "schema": r.report.get("schema", 1)} for r in variant.runs]
    try:
        lengths = stability_summary(reports, fractions=())["episode_length"]
    except (ValueError, KeyError, TypeError):
        return None, None, None
    return lengths["mean"], lengths["cv"], lengths["mean_within_run_std"]


# --- the page ------------------------------------------------------------------------------


def _header(evidence: Evidence) -> list[str]:
    lines = ["# Results", ""]
    if evidence.quick:
        lines += [
            "> **SMOKE RUN — NOT EVIDENCE.** This page was made from a `--quick` evidence "
            "folder: tiny budgets that check the pipeline end to end. Its numbers and verdicts "
            "say nothing about the claims; publish only a page made without `--quick`.",
            "",
        ]
    lines += [
        f"Generated by `unigen-sb3 report {evidence.root.name} --out <docs>` from the evidence "
        f"folder that `{evidence.command}` wrote"
        + (" with `--quick` (a smoke run)." if evidence.quick else " (full budgets)."),
        "Every number below is computed from the runs' files (`eval.json`, `eval_history.json`, "
        "TensorBoard scalars, `baselines.json`); rerunning the report gives the same page.",
        "",
        "## Suites",
        "",
    ]
    rows = []
    for s in evidence.suites:
        spec = s.spec
        seeds = ", ".join(map(str, s.seeds)) if s.seeds else "none"
        rows.append(
            [
                spec.name,
                spec.role,
                spec.task,
                spec.algorithm,
                spec.main_variant,
                f"`{_md(spec.config)}`" if spec.config else "-",
                f"{seeds} ({len(s.seeds)})",
                _md(spec.description) or "-",
                _md(spec.budget) or "-",
            ]
        )
    lines += _table(
        [
            "suite",
            "role",
            "task",
            "algorithm",
            "main variant",
            "config",
            "seeds",
            "description",
            "budget",
        ],
        rows,
    )
    lines += [
        "Agents are evaluated deterministically on held-out tasks (the same tasks for every "
        "seed of a suite, `evaluation.seed` fixed); the baselines on the same tasks. A cell "
        "`mean ± std` is over training seeds (std with ddof=1; a single seed shows its number "
        "alone).",
        "",
        "## Missing",
        "",
    ]
    missing = [(s.spec.name, m) for s in evidence.suites for m in s.missing]
    notes = [(s.spec.name, m) for s in evidence.suites for m in s.notes]
    if not missing:
        lines += ["Every suite, run and baseline the manifest plans is present.", ""]
    else:
        lines += [f"- {name}: {_md(m)}" for name, m in missing] + [""]
    if notes:
        lines += [f"- {name}: {_md(m)}" for name, m in notes] + [""]
    return lines


#: In a warm-started run: the cloned policy (where RL started) on the same test tasks.
CLONE_EVAL = "clone_eval.json"


def _paired_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p of ``b - a`` (1 when every difference is 0, 0 when they are
    all equal and non-zero)."""
    from scipy import stats

    diffs = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if np.all(diffs == diffs[0]):
        return 1.0 if diffs[0] == 0 else 0.0
    return float(stats.ttest_rel(b, a).pvalue)


def _rl_over_clone(evidence: Evidence) -> list[str]:
    """What the RL phase added to the cloned policy it started from, per warm-started suite:
    test R_total of the clone and of the kept policy, paired by seed, and the validation
    curve's start and best."""
    rows = []
    for s in (s for s in evidence.suites if s.spec.is_agent and s.main is not None):
        assert s.main is not None
        pairs = [
            (metric_value(r.clone, "reward_total"), r.value("reward_total"))
            for r in s.main.runs
            if r.clone is not None
        ]
        pairs_ok = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs_ok:
            continue
        clone, final = [a for a, _ in pairs_ok], [b for _, b in pairs_ok]
        gains = [b - a for a, b in pairs_ok]
        starts = [r.history[0][1] for r in s.main.runs if r.history]
        bests = [max(v for _, v in r.history) for r in s.main.runs if r.history]
        p = _paired_p(clone, final) if len(gains) >= 2 else None
        rows.append(
            [
                s.spec.name,
                str(len(gains)),
                _pm(clone),
                _pm(final),
                _pm(gains),
                "n/a (1 seed)" if p is None else _p_text(p),
                f"{sum(g > 0 for g in gains)} of {len(gains)}",
                f"{_pm(starts)} -> {_pm(bests)}" if starts else "n/a",
            ]
        )
    if not rows:
        return []
    header = [
        "suite",
        "seeds",
        "clone R_total (test)",
        "after RL R_total (test)",
        "RL minus clone",
        "paired t-test",
        "seeds where RL helped",
        "validation: start -> best",
    ]
    return [
        "### What RL added to the cloned policy",
        "",
        *_table(header, rows),
        "",
        "The agents start from a policy cloned from Oracle demonstrations (`training.warm_start`, "
        "docs/evidence.md); the clone is evaluated on the same held-out test tasks as the agent "
        "(`clone_eval.json`), so the difference, paired by seed, is what the RL phase added. The "
        "validation columns are the in-training evaluations the kept policy was chosen on: "
        "their best is optimistic by selection, the test columns are not.",
        "",
    ]


#: The markers around the at-a-glance table; README.md quotes the table between the same
#: markers, and a test keeps the two identical.
GLANCE_START = "<!-- results-at-a-glance:start -->"
GLANCE_END = "<!-- results-at-a-glance:end -->"


def glance_table(evidence: Evidence) -> list[str]:
    """The at-a-glance table, between :data:`GLANCE_START` and :data:`GLANCE_END`: per agent
    suite, R_total (mean ± std over seeds) against Random, Blind and the Oracle on the same
    tasks, the normalized score, the margin over Blind in normalized units and the
    prompt-swap drop."""
    header = [
        "suite",
        "agent",
        "seeds",
        "R_total",
        "normalized",
        "minus Blind (normalized)",
        "prompt-swap drop",
        "Random",
        "Blind",
        "Oracle",
    ]
    rows = []
    for s in (s for s in evidence.suites if s.spec.is_agent):
        main = s.main
        values = main.values("reward_total") if main else []
        normalized = _normalized_values(s, "reward_total")
        random, blind = s.baseline("Random", "reward_total"), s.baseline("Blind", "reward_total")
        oracle = s.baseline("Oracle", "reward_total")
        blind_n = (
            None
            if random is None or oracle is None or blind is None
            else normalized_score(blind, random, oracle)
        )
        margin = (
            _signed(float(np.mean(normalized)) - blind_n)
            if normalized and blind_n is not None
            else "n/a"
        )
        rows.append(
            [
                s.spec.name,
                f"{s.spec.algorithm} ({s.spec.main_variant})",
                str(len(values)),
                _pm(values) if values else "n/a",
                _normalized_cell(s, values, "reward_total"),
                margin,
                _pm(main.values(PROMPT_SWAP_DROP)) if main else "n/a",
                _num(random),
                _num(blind),
                _num(oracle),
            ]
        )
    return [GLANCE_START, *_table(header, rows), GLANCE_END]


def _headline(evidence: Evidence) -> list[str]:
    agents = [s for s in evidence.suites if s.spec.is_agent]
    lines = ["## Headline", ""]
    if not agents:
        return [*lines, "No suite has the agent role.", ""]

    def rows_of(keys: Sequence[str]) -> list[list[str]]:
        rows = []
        for s in agents:
            main = s.main
            n = str(len(main.runs)) if main else "0"
            agent = f"**{s.spec.algorithm} ({s.spec.main_variant})**"
            cells = [_pm(main.values(k)) if main else "n/a" for k in keys]
            rows.append([f"**{s.spec.name}**", agent, n, *cells])
            for b in BASELINE_NAMES:
                rows.append(["", b, "-", *(_num(s.baseline(b, k)) for k in keys)])
        return rows

    reward_keys = [*REWARD_COLUMNS, PROMPT_SWAP_DROP]
    lines += [
        "### Rewards",
        "",
        *_table(
            ["suite", "policy", "seeds", *REWARD_COLUMNS.values(), "prompt-swap drop"],
            rows_of(reward_keys),
        ),
        "Every R is scored with the suite's base weights (also for variants trained with other "
        "weights). Prompt-swap drop: the fall of R_total when each episode's prompt is swapped "
        "for another's (an agent that ignores the prompt loses nothing; n/a for the scripted "
        "baselines, which read their task directly). Baselines are one deterministic "
        "evaluation each, so they have no ± across seeds.",
        "",
    ]
    metric_keys = [*METRIC_COLUMNS, "episode_length"]
    lines += [
        "### Evaluation metrics",
        "",
        *_table(
            ["suite", "policy", "seeds", *METRIC_COLUMNS.values(), "episode length"],
            rows_of(metric_keys),
        ),
        "↓: lower is better. Fréchet and KID compare the perceptual embeddings of the final "
        "canvases with the targets' (a proxy of FID / KID); n/a: the runs do not report it.",
        "",
    ]
    keys = [*REWARD_COLUMNS, *METRIC_COLUMNS]
    titles = {**REWARD_COLUMNS, **METRIC_COLUMNS}
    header = ["metric", *(f"{s.spec.name} ({s.spec.algorithm})" for s in agents)]
    norm_rows = [
        [titles[k], *(_normalized_cell(s, s.main.values(k) if s.main else [], k) for s in agents)]
        for k in keys
    ]
    lines += [
        "### Normalized score",
        "",
        "`(agent - Random) / (Oracle - Random)`: 0 is Random, 1 is Oracle, with the suite's own "
        "baselines. Each seed is normalized, then mean ± std is taken over seeds (the map is "
        "affine, so this equals normalizing the mean). For a lower-is-better metric (↓) Oracle "
        "is below Random and the score still grows towards 1 as the agent improves.",
        "",
        *_table(header, norm_rows),
        *_footnotes(norm_rows),
    ]
    margin_rows = []
    for k in keys:
        cells = []
        for s in agents:
            blind = s.baseline("Blind", k)
            mean, _ = _mean_std(s.main.values(k)) if s.main else (None, None)
            cells.append("n/a" if mean is None or blind is None else _signed(mean - blind))
        margin_rows.append([titles[k], *cells])
    norm_margin = []
    for s in agents:
        random, oracle = s.baseline("Random", "reward_total"), s.baseline("Oracle", "reward_total")
        blind = s.baseline("Blind", "reward_total")
        mean, _ = _mean_std(s.main.values("reward_total")) if s.main else (None, None)
        if s.baselines is None:
            norm_margin.append(_NO_BASELINES)
        elif None in (mean, random, oracle, blind):
            norm_margin.append("n/a")
        else:
            assert mean is not None and random is not None and oracle is not None
            assert blind is not None
            a, b = normalized_score(mean, random, oracle), normalized_score(blind, random, oracle)
            norm_margin.append(_NO_SPAN if a is None or b is None else _signed(a - b))
    margin_rows.insert(1, ["R_total (normalized units)", *norm_margin])
    lines += [
        "### Margin over Blind",
        "",
        "Agent mean minus Blind (the best prompt-blind action sequence): positive means the "
        "agent does better, except for ↓ metrics, where better is negative. An agent that does "
        "not beat Blind has not shown that it reads the prompt.",
        "",
        *_table(header, margin_rows),
        *_footnotes(margin_rows),
    ]
    return lines


def _ablation(evidence: Evidence) -> list[str]:
    lines = ["## Ablation", ""]
    suites = [s for s in evidence.suites if s.spec.is_ablation]
    if not suites:
        return [*lines, "No suite has the ablation role.", ""]
    for s in suites:
        lines += [f"### {s.spec.name}", ""]
        if not s.variants:
            lines += ["No finished run.", ""]
            continue
        if any((r.path / "warm_start.json").is_file() for v in s.variants.values() for r in v.runs):
            lines += [
                "These runs are warm-started (`training.warm_start`): every variant of a seed "
                "starts from the same cloned policy, since the cloning does not use the reward. "
                "So this ablation measures what the RL phase does with each reward, starting "
                "from a policy that already follows prompts, not what each reward teaches from "
                "scratch; differences are bounded by what that phase changes (the table "
                '"What RL added to the cloned policy" above).',
                "",
            ]
        rows = []
        for v in s.variants.values():
            w = v.weights
            weights = (
                ", ".join(_num(w.get(c)) for c in ("quality", "edit", "consistency"))
                if w
                else "n/a"
            )
            overrides = (
                ", ".join(f"`{k}={json.dumps(v.overrides[k])}`" for k in sorted(v.overrides)) or "-"
            )
            total = v.values("reward_total")
            rows.append(
                [
                    v.name,
                    weights,
                    _md(overrides),
                    str(len(v.runs)),
                    *(_pm(v.values(k)) for k in REWARD_COLUMNS),
                    _normalized_cell(s, total, "reward_total"),
                ]
            )
        lines += _table(
            [
                "variant",
                "weights (q, e, c)",
                "overrides",
                "seeds",
                *REWARD_COLUMNS.values(),
                "normalized R_total",
            ],
            rows,
        )
        lines += _footnotes(rows)
        threshold = _threshold(s)
        stab_rows = []
        for v in s.variants.values():
            length_mean, cv, within = _length_stats(v)
            if threshold is None:
                steps = "n/a"
            else:
                steps = _steps_text(_variant_steps(s, v))
            stab_rows.append(
                [
                    v.name,
                    str(len(v.runs)),
                    _sig(_var(v.values("reward_total"))),
                    _num(length_mean),
                    _num(cv),
                    _num(within),
                    steps,
                ]
            )
        lines += [
            "Stability across seeds:",
            "",
            *_table(
                [
                    "variant",
                    "seeds",
                    "var of R_total",
                    "episode length",
                    "episode-length cv",
                    "within-run length std",
                    f"steps to {THRESHOLD_LEVEL:g} normalized",
                ],
                stab_rows,
            ),
            "var of R_total: sample variance (ddof=1) of the seeds' mean R_total. Episode "
            "length: mean over seeds of the runs' mean length; cv: its std across seeds / mean; "
            "within-run std: the mean of the runs' own std (from `stability_summary`). Steps to "
            f"{THRESHOLD_LEVEL:g}: the first evaluation of `eval_history.json` at which R_total "
            f">= Random + {THRESHOLD_LEVEL:g} (Oracle - Random), median over the seeds that "
            "reached it. The history is measured on the validation tasks, Random and Oracle "
            "on the held-out test tasks of `baselines.json`: the threshold is approximate.",
            "",
        ]
        if threshold is None:
            lines += [
                "Steps to the threshold are n/a: no baselines.json, or Oracle does not beat "
                "Random on R_total.",
                "",
            ]
    return lines


def _claims(evidence: Evidence) -> list[str]:
    ablation = next((s for s in evidence.suites if s.spec.is_ablation), None)
    lines = [
        "## Claims of the design",
        "",
        "Each row of the design's comparison table (UniGen-1.5 vs. prior RL methods) that the "
        "runs can test, with the numbers that support or refute it.",
        "",
    ]
    if evidence.quick:
        lines += ["> Smoke run: these verdicts test the pipeline, not the claims.", ""]
    where = ablation.spec.name if ablation is not None else "none"
    lines += [
        f"**Rule.** {CLAIM_RULE} Claims 1-4 use the ablation suite `{where}`.",
        "",
    ]
    for i, claim in enumerate(evidence_claims(evidence), start=1):
        lines += [f"### {i}. {claim.title}: {claim.verdict}", "", f"_{claim.statement}_", ""]
        for c in claim.checks:
            why = f" ({c.why})" if c.why else ""
            lines.append(f"- {c.verdict}: {c.text}{why}")
        lines.append("")
    return lines


def _goals(evidence: Evidence) -> list[str]:
    lines = [
        "## PPO goals",
        "",
        "Goals of the issue for PPO: normalized R_total >= "
        + " and ".join(f"{v:g} on {k}" for k, v in PPO_GOALS.items())
        + ", and R_total above every non-privileged baseline (Random, NoOp, Blind) in each PPO "
        "suite. Met when the mean over seeds reaches the goal (a point estimate; the headline "
        "tables give the spread).",
        "",
    ]
    ppo = [s for s in evidence.suites if s.spec.is_agent and s.spec.algorithm.upper() == "PPO"]
    rows = []
    for task, goal in PPO_GOALS.items():
        suites = [s for s in ppo if s.spec.task == task]
        if not suites:
            rows.append([f"normalized R_total >= {goal:g} ({task})", "-", "not run", "-", "-"])
        for s in suites:
            mean, _ = _mean_std(_normalized_values(s, "reward_total"))
            if mean is None:
                rows.append(
                    [
                        f"normalized R_total >= {goal:g} ({task})",
                        s.spec.name,
                        "n/a",
                        "not measured",
                        "-",
                    ]
                )
                continue
            met = "met" if mean >= goal else "missed"
            rows.append(
                [
                    f"normalized R_total >= {goal:g} ({task})",
                    s.spec.name,
                    _num(mean),
                    met,
                    _signed(mean - goal),
                ]
            )
    for s in ppo:
        mean, _ = _mean_std(s.main.values("reward_total")) if s.main else (None, None)
        for b in NON_PRIVILEGED:
            value = s.baseline(b, "reward_total")
            goal_text = f"R_total > {b}" + ("" if value is None else f" ({_num(value)})")
            if mean is None or value is None:
                rows.append([goal_text, s.spec.name, _num(mean), "not measured", "-"])
                continue
            rows.append(
                [
                    goal_text,
                    s.spec.name,
                    _num(mean),
                    "met" if mean > value else "missed",
                    _signed(mean - value),
                ]
            )
    return [*lines, *_table(["goal", "suite", "agent", "verdict", "by"], rows)]


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    # No "Software" entry: the file depends on the numbers only, not on matplotlib's version.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def _curves(
    evidence: Evidence, plt: Any, out: Path, scalars: Callable[[Path], dict[str, Any]]
) -> list[str]:
    lines = [
        "## Learning curves",
        "",
        "Per finished training episode (TensorBoard `episode/*`: R_total unshaped and its "
        "components, on the tables' scale), averaged per timestep bin within each seed; the "
        "line is the mean across seeds, the band ± one std across seeds.",
        "",
    ]
    if plt is None:
        return [*lines, f"_{MATPLOTLIB_MISSING}._", ""]
    for s in evidence.suites:
        if not s.spec.is_agent or s.main is None:
            continue
        per_tag = {tag: [scalars(r.path).get(tag, []) for r in s.main.runs] for tag in CURVE_TAGS}
        if not any(any(series) for series in per_tag.values()):
            lines += [f"- {s.spec.name}: no `episode/*` TensorBoard scalars in its runs", ""]
            continue
        fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
        for ax, (tag, title) in zip(axes.flat, CURVE_TAGS.items(), strict=True):
            series = [x for x in per_tag[tag] if x]
            ax.set_title(f"{title} ({len(series)} seeds)", fontsize=9)
            if series:
                x, mean, std = seed_band(series)
                ax.plot(x, mean)
                ax.fill_between(x, mean - std, mean + std, alpha=0.3)
            ax.set_xlabel("timesteps")
        fig.suptitle(f"{s.spec.name}: {s.spec.algorithm} ({s.spec.main_variant})")
        name = f"{s.spec.name}_curves.png"
        _save(plt, fig, out / name)
        lines += [f"![{s.spec.name} learning curves](results/{name})", ""]
    for s in evidence.suites:
        if not s.spec.is_ablation or not s.variants:
            continue
        fig, ax = plt.subplots(figsize=(8, 4.5))
        plotted = 0
        for v in s.variants.values():
            series = [x for x in (scalars(r.path).get("episode/total", []) for r in v.runs) if x]
            if not series:
                continue
            x, mean, std = seed_band(series)
            (line,) = ax.plot(x, mean, label=f"{v.name} ({len(series)} seeds)")
            ax.fill_between(x, mean - std, mean + std, alpha=0.15, color=line.get_color())
            plotted += 1
        if not plotted:
            plt.close(fig)
            lines += [
                f"- {s.spec.name} (every variant): no `episode/total` TensorBoard scalars",
                "",
            ]
            continue
        ax.set_xlabel("timesteps")
        ax.set_ylabel("paid R_total per training episode")
        ax.set_title(f"{s.spec.name}: every variant")
        ax.legend(fontsize=7)
        name = f"{s.spec.name}_variants_curves.png"
        _save(plt, fig, out / name)
        lines += [f"![{s.spec.name} variants](results/{name})", ""]
        main = s.variants.get(s.spec.main_variant)
        rescaled = [
            v.name
            for v in s.variants.values()
            if main is not None
            and v is not main
            and (
                v.weights != main.weights or any(k.startswith("reward.normal") for k in v.overrides)
            )
        ]
        if rescaled:
            lines += [
                "Each curve is the reward its variant was trained on; "
                + ", ".join(f"`{n}`" for n in rescaled)
                + " train with other weights or another reward normalization, so their curves "
                "are on another scale than the tables, which score every variant with the base "
                "weights.",
                "",
            ]
    return lines


def _validation(evidence: Evidence, plt: Any, out: Path) -> list[str]:
    lines = [
        "## Validation history",
        "",
        "Mean R_total of the in-training evaluation (`eval_history.json`, on the validation "
        "tasks) across seeds, ± one std; the dashed lines are the baselines' R_total on the "
        "held-out test tasks and the threshold of the steps-to column.",
        "",
    ]
    if plt is None:
        return [*lines, f"_{MATPLOTLIB_MISSING}._", ""]
    for s in evidence.suites:
        if not s.spec.is_agent or s.main is None:
            continue
        histories = [r.history for r in s.main.runs if r.history]
        if not histories:
            lines += [f"- {s.spec.name}: no run has an `eval_history.json`", ""]
            continue
        x, mean, std = _history_band(histories)
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(x, mean, marker="o", label=f"{s.spec.main_variant} ({len(histories)} seeds)")
        ax.fill_between(x, mean - std, mean + std, alpha=0.3)
        for b in ("Random", "Blind", "Oracle"):
            value = s.baseline(b, "reward_total")
            if value is not None:
                ax.axhline(value, linestyle="--", linewidth=1, color="grey")
                ax.annotate(b, (x[0], value), fontsize=7, va="bottom")
        threshold = _threshold(s)
        if threshold is not None:
            ax.axhline(threshold, linestyle=":", linewidth=1, color="black")
            ax.annotate(f"{THRESHOLD_LEVEL:g} normalized", (x[0], threshold), fontsize=7)
        ax.set_xlabel("timesteps")
        ax.set_ylabel("validation R_total")
        ax.set_title(f"{s.spec.name}: {s.spec.algorithm}")
        ax.legend(fontsize=8)
        name = f"{s.spec.name}_validation.png"
        _save(plt, fig, out / name)
        lines += [f"![{s.spec.name} validation history](results/{name})", ""]
    return lines


def _before_after(evidence: Evidence, out: Path) -> list[str]:
    lines = [
        "## Before and after",
        "",
        "Held-out tasks: the start canvas, the agent's final canvas and the target, with each "
        "task's prompt; the first seed of each suite's main variant.",
        "",
    ]
    for s in evidence.suites:
        source = s.folder / "before_after.png"
        if not source.is_file():
            lines += [f"- {s.spec.name}: no before_after.png", ""]
            continue
        name = f"{s.spec.name}_before_after.png"
        shutil.copyfile(source, out / name)
        seed = f", seed {s.seeds[0]}" if s.seeds else ""
        lines += [
            f"### {s.spec.name} ({s.spec.algorithm} {s.spec.main_variant}{seed})",
            "",
            f"![{s.spec.name} before and after](results/{name})",
            "",
        ]
    return lines


def write_results(evidence_dir: str | Path, out: str | Path) -> Path:
    """Write ``OUT/results.md`` and its images under ``OUT/results/`` from an evidence folder.

    :param evidence_dir: the folder holding :data:`MANIFEST_NAME` and the suites.
    :param out: the docs folder.
    :return: the path of ``results.md``.
    :raises FileNotFoundError: if the manifest does not exist.
    :raises ValueError: for a malformed manifest, naming the file, key and what is accepted.
    """
    evidence = load_evidence(evidence_dir)
    out = Path(out)
    images = out / "results"
    images.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    if plt is None:
        warnings.warn(MATPLOTLIB_MISSING, UserWarning, stacklevel=2)
    cache: dict[Path, dict[str, Any]] = {}

    def scalars(run: Path) -> dict[str, Any]:
        if run not in cache:
            cache[run] = read_scalars(run)
        return cache[run]

    lines = [
        *_header(evidence),
        "## At a glance",
        "",
        *glance_table(evidence),
        "",
        "R_total on the held-out test tasks, mean ± std over seeds; normalized: `(R - Random) / "
        "(Oracle - Random)` per seed; minus Blind: the normalized mean minus Blind's normalized "
        "score; prompt-swap drop: how much R_total falls when prompts are swapped between "
        "episodes (0 for an agent that ignores the prompt).",
        "",
        *_headline(evidence),
        *_rl_over_clone(evidence),
        *_goals(evidence),
        *_ablation(evidence),
        *_claims(evidence),
        *_curves(evidence, plt, images, scalars),
        *_validation(evidence, plt, images),
        *_before_after(evidence, images),
    ]
    while lines and lines[-1] == "":
        lines.pop()
    path = out / "results.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
