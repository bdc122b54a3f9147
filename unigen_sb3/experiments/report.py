"""``unigen-sb3 report``: markdown plus plots from run, ablation and sweep folders.

- learning curves of the per-episode R_total and its components (TensorBoard scalars
  ``episode/total``, ``episode/quality``, ... that
  :class:`~unigen_sb3.callbacks.RewardComponentCallback` writes: one value per finished
  training episode, on the scale of ``eval.json`` and the tables; runs without them fall back
  to the per-step ``reward/*`` means, else SB3's ``rollout/ep_rew_mean``);
- ablation bars with error bars (std across seeds, from ``ablation.json``);
- reward variance across seeds (runs in the same folder whose configs differ only in
  ``seed``, e.g. the seeds of one ablation variant, summarized by
  :func:`~unigen_sb3.evaluation.stability_summary`);
- every ``sweep.json`` found.

One evidence folder (``make evidence``: it holds ``evidence.json``) gets the published results
page instead, ``OUT/results.md`` (:func:`~unigen_sb3.experiments.results.write_results`).

Plots need matplotlib (extra ``report``); without it the markdown is still written, a
:class:`UserWarning` is issued and ``unigen-sb3 report`` prints a warning on stderr.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from unigen_sb3.utils import atomic_write_text

__all__ = [
    "CURVE_TAGS",
    "MATPLOTLIB_MISSING",
    "curve_tags",
    "find_runs",
    "plotting_available",
    "read_scalars",
    "write_report",
]

#: Curves, by preference: per-episode R_total and components (the tables' scale), then the
#: per-step means of older runs, then SB3's episode return.
CURVE_TAGS: tuple[tuple[str, ...], ...] = (
    ("episode/total", "episode/quality", "episode/edit", "episode/consistency"),
    ("reward/total", "reward/quality", "reward/edit", "reward/consistency"),
    ("rollout/ep_rew_mean",),
)
_CURVE_LABELS = {
    "episode/total": "R_total",
    "episode/quality": "R_quality",
    "episode/edit": "R_edit",
    "episode/consistency": "R_consistency",
}
MATPLOTLIB_MISSING = (
    "matplotlib is not installed, so the report has no plots (pip install 'unigen-sb3[report]')"
)
_BAR_METRICS = ("reward_total", "reward_quality", "reward_edit", "reward_consistency")


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories (``config.yaml`` + ``eval.json``) at or below ``paths``, sorted, unique."""
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        for cfg in [p / "config.yaml", *p.rglob("config.yaml")]:
            if cfg.is_file() and (cfg.parent / "eval.json").is_file():
                found.add(cfg.parent.resolve())
    return sorted(found)


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run (all event files under ``tb/``), tag -> [(step, value)]."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return {}
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for events in sorted((run_dir / "tb").rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            out[tag].extend((int(e.step), float(e.value)) for e in acc.Scalars(tag))
    return {tag: sorted(v) for tag, v in out.items()}


def curve_tags(scalars: dict[str, Any]) -> list[str]:
    """The tags a run's learning curve plots: the first group of :data:`CURVE_TAGS` it has."""
    for group in CURVE_TAGS:
        tags = [t for t in group if t in scalars]
        if tags:
            return tags
    return []


def plotting_available() -> bool:
    """:return: whether matplotlib can be imported (the report's plots need it)."""
    return _pyplot() is not None


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _label(run: Path, root: Path) -> str:
    try:
        rel = run.relative_to(root)
        return str(rel) if str(rel) != "." else run.name
    except ValueError:
        return run.name


def _seed_group_key(run: Path, config: dict[str, Any]) -> tuple[str, str]:
    """Runs share a seed group when they sit in one folder and differ only in ``seed``.

    The folder (an ablation variant's ``OUT/<variant>/``) keeps variants apart whose
    configs happen to be equal, e.g. a grid entry equal to the base weights and ``full``.
    """
    seedless = {k: v for k, v in config.items() if k != "seed"}
    return str(run.parent), json.dumps(seedless, sort_keys=True)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "n/a"
    return f"{float(v):.4g}"


def _cell(entry: Any) -> str:
    """``mean ± std`` of an eval.json metric entry, ``n/a`` for anything else."""
    if not isinstance(entry, dict):
        return "n/a"
    return f"{_fmt(entry.get('mean'))} ± {_fmt(entry.get('std'))}"


def _read_mapping(path: Path, parse: Any) -> dict[str, Any]:
    """A JSON/YAML file holding a mapping. :raises ValueError: saying what is wrong with it."""
    try:
        data = parse(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(
            f"{path.name} cannot be read: {' '.join(str(exc).split())[:200]}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} does not hold a mapping ({type(data).__name__})")
    return data


def write_report(paths: list[str | Path], out: str | Path) -> Path:
    """Write ``OUT/report.md`` and its PNG plots for the given run/ablation/sweep folders.

    A single evidence folder (one holding ``evidence.json``) gets ``OUT/results.md`` and
    ``OUT/results/*.png`` instead, from :func:`~unigen_sb3.experiments.results.write_results`.

    :param paths: run directories, or folders holding them (ablations, sweeps); or one
        evidence folder.
    :param out: the report folder.
    :return: the path of ``report.md`` (``results.md`` for an evidence folder).
    :raises FileNotFoundError: if a path does not exist or no run is found.
    :raises ValueError: for an evidence folder whose ``evidence.json`` is malformed.
    """
    from unigen_sb3.evaluation import stability_summary
    from unigen_sb3.experiments.results import MANIFEST_NAME, write_results

    if len(paths) == 1 and (Path(paths[0]) / MANIFEST_NAME).is_file():
        return write_results(paths[0], out)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = find_runs(paths)
    if not runs:
        raise FileNotFoundError(f"no run directory (config.yaml + eval.json) under {paths}")
    root = Path(paths[0]).resolve() if len(paths) == 1 else Path("/")
    evals: dict[Path, dict[str, Any]] = {}
    configs: dict[Path, dict[str, Any]] = {}
    skipped: list[str] = []
    for run in runs:
        try:
            evals[run] = _read_mapping(run / "eval.json", json.loads)
            configs[run] = _read_mapping(run / "config.yaml", yaml.safe_load)
        except ValueError as exc:
            evals.pop(run, None)
            skipped.append(f"- {_label(run, root)}: {exc}")
    runs = [r for r in runs if r in configs]
    plt = _pyplot()
    lines = ["# unigen-sb3 report", ""]
    if skipped:
        lines += ["## Skipped runs", "", *skipped, ""]
    if plt is None:
        warnings.warn(MATPLOTLIB_MISSING, UserWarning, stacklevel=2)
        lines += [f"_{MATPLOTLIB_MISSING}._", ""]

    # Final evaluation table.
    lines += [
        "## Final evaluation",
        "",
        "| run | seed | R_total | R_quality | R_edit | R_consistency | LPIPS | SSIM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        m = evals[run].get("metrics")
        m = m if isinstance(m, dict) else {}
        cells = [_cell(m.get(k)) for k in (*_BAR_METRICS, "lpips", "ssim")]
        seed = configs[run].get("seed", "")
        lines.append(f"| {_label(run, root)} | {seed} | " + " | ".join(cells) + " |")
    lines.append("")

    # Learning curves per component.
    lines += [
        "## Learning curves",
        "",
        "Per training episode (mean of the episodes that ended between two log dumps): R_total "
        "(unshaped) and its components, on the scale of the tables above.",
        "",
    ]
    for i, run in enumerate(runs):
        scalars = read_scalars(run)
        tags = curve_tags(scalars)
        if not tags:
            lines.append(f"- {_label(run, root)}: no TensorBoard scalars")
            continue
        if plt is None:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for tag in tags:
            steps, values = zip(*scalars[tag], strict=True)
            ax.plot(steps, values, label=_CURVE_LABELS.get(tag, tag))
        ax.set_xlabel("timesteps")
        ax.set_ylabel("per-episode reward" if tags[0].startswith("episode/") else "reward")
        ax.set_title(_label(run, root))
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"curves_{i:03d}.png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        lines.append(f"![{_label(run, root)}]({name})")
    lines.append("")

    # Ablation bars with error bars.
    ablations = sorted(
        {
            a.resolve()
            for p in map(Path, paths)
            for a in [p, *p.rglob("*")]
            if (a / "ablation.json").is_file()
        }
    )
    for k, folder in enumerate(ablations):
        try:
            summary = _read_mapping(folder / "ablation.json", json.loads)
            variants = summary["variants"]
            for v in variants.values():
                _ = v["weights"]["quality"], v["weights"]["edit"], v["weights"]["consistency"]
                _ = v["metrics"].get, len(summary["seeds"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            lines += [f"## Ablation: {folder.name}", "", f"Skipped: ablation.json: {exc!r}", ""]
            continue
        lines += [
            f"## Ablation: {folder.name}",
            "",
            "| variant | weights (q, e, c) | " + " | ".join(_BAR_METRICS) + " |",
            "|---|---|" + "---|" * len(_BAR_METRICS),
        ]
        for name, v in variants.items():
            w = v["weights"]
            cells = []
            for metric in _BAR_METRICS:
                cells.append(_cell(v["metrics"].get(metric)))
            lines.append(
                f"| {name} | {w['quality']:.3g}, {w['edit']:.3g}, {w['consistency']:.3g} | "
                + " | ".join(cells)
                + " |"
            )
        lines += ["", f"Error bars and ± are the std across {len(summary['seeds'])} seeds.", ""]
        if plt is not None:
            import numpy as np

            fig, ax = plt.subplots(figsize=(7, 3.5))
            names = list(variants)
            width = 0.8 / len(_BAR_METRICS)
            for j, metric in enumerate(_BAR_METRICS):
                means = [variants[n]["metrics"].get(metric, {}).get("mean", 0.0) for n in names]
                stds = [variants[n]["metrics"].get(metric, {}).get("std", 0.0) for n in names]
                ax.bar(
                    np.arange(len(names)) + j * width,
                    means,
                    width,
                    yerr=stds,
                    capsize=3,
                    label=metric,
                )
            ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=20, fontsize=8)
            ax.set_ylabel("evaluation mean")
            ax.legend(fontsize=7)
            fig.tight_layout()
            name = f"ablation_{k:02d}.png"
            fig.savefig(out / name, dpi=100)
            plt.close(fig)
            lines += [f"![ablation {folder.name}]({name})", ""]

    # Reward variance across seeds.
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for run in runs:
        groups[_seed_group_key(run, configs[run])].append(run)
    multi: list[list[Path]] = []
    repeated: list[list[Path]] = []
    for group in groups.values():
        if len(group) < 2:
            continue
        group_seeds = [configs[r].get("seed") for r in group]
        # The same seed twice is not a spread across seeds: keep those runs apart.
        (repeated if len(set(map(str, group_seeds))) < len(group_seeds) else multi).append(group)
    lines += ["## Reward variance across seeds", ""]
    for group in repeated:
        listing = ", ".join(f"{_label(r, root)} (seed {configs[r].get('seed')})" for r in group)
        lines += [
            f"Not merged: {listing} have the same config and repeat a seed, so they are not "
            "a spread across seeds; each is reported on its own above.",
            "",
        ]
    if not multi:
        lines += ["No configuration was run with more than one seed.", ""]
    else:
        lines += ["| runs | seeds | R_total mean | std | variance |", "|---|---|---|---|---|"]
        variances = []
        for group in multi:
            reports = []
            for run in group:
                rep = dict(evals[run])
                history = run / "eval_history.json"
                if history.is_file():
                    rep["history"] = json.loads(history.read_text("utf-8")).get("history")
                reports.append(rep)
            summ = stability_summary(reports)
            label = _label(group[0].parent, root)
            final = summ["final"]
            variances.append((label, final["variance"] or 0.0))
            seeds = [configs[r].get("seed") for r in group]
            lines.append(
                f"| {label} | {seeds} | {_fmt(final['mean'])} | {_fmt(final['std'])} | "
                f"{_fmt(final['variance'])} |"
            )
        lines.append("")
        if plt is not None:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.bar([v[0] for v in variances], [v[1] for v in variances])
            ax.set_ylabel("variance of R_total across seeds")
            ax.tick_params(axis="x", labelrotation=20, labelsize=8)
            fig.tight_layout()
            fig.savefig(out / "seed_variance.png", dpi=100)
            plt.close(fig)
            lines += ["![variance across seeds](seed_variance.png)", ""]

    # Sweeps: every sweep.json at or below the given paths, once each.
    sweeps = sorted(
        {
            f.resolve()
            for p in map(Path, paths)
            for f in [p / "sweep.json", *p.rglob("sweep.json")]
            if f.is_file()
        }
    )
    for sweep_json in sweeps:
        try:
            s = _read_mapping(sweep_json, json.loads)
        except ValueError as exc:
            lines += [f"## Sweep ({_label(sweep_json.parent, root)})", "", f"Skipped: {exc}", ""]
            continue
        found = s.get("best")
        best: dict[str, Any] = found if isinstance(found, dict) else {}
        lines += [
            f"## Sweep: {s.get('study_name')} ({_label(sweep_json.parent, root)})",
            "",
            f"{s.get('n_complete')} complete of {s.get('n_trials')} trials; "
            f"best trial {best.get('number')}: {s.get('metric')} = {_fmt(best.get('value'))}, "
            f"params {best.get('params')}",
            "",
        ]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
