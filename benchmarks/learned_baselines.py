"""The baselines a trained agent is judged against, in one table: docs/baselines.md.

Usage::

    python benchmarks/learned_baselines.py [--runs runs/baselines] [--episodes 32]
        [--budgets 16 64 256] [--planner-tasks unified generate edit] [--demos 512 4096]
        [--threads 1] [--stage all|train] [--skip-training] [--set KEY=VALUE ...]
        [--output docs/baselines.md]

Rows (every one scored by the evaluation suite, ``evaluate_unigen``, with the base weights
0.4 / 0.4 / 0.2 on the same seeded held-out tasks as ``benchmarks/baselines.py``: episode j
of a task set draws its task from seed j, 48x48, horizon 8):

- the unified agent: ``quickstart`` (PPO, CnnPolicy, ``discrete`` encoding);
- separate-reward RL, each the same algorithm, policy and budget on another reward:
  ``baseline_quality``, ``baseline_edit``, ``baseline_consistency`` (one component alone),
  ``baseline_raw_sum`` (the un-normalized sum of the sub-metrics), the specialists
  ``baseline_generate_only`` and ``baseline_edit_only``, and the two routed by the task kind
  the agent observes (:class:`~unigen_sb3.evaluation.routing.TaskKindRouter`);
- behaviour cloning from Oracle demonstrations (:mod:`unigen_sb3.experiments.demos`,
  :mod:`unigen_sb3.experiments.bc`) into quickstart's own PPO policy network;
- the CEM planner (:class:`~unigen_sb3.evaluation.planner.CEMPlanner`, privileged: it
  queries the reward) at each budget of reward evaluations per step;
- Oracle, Random and NoOp, recomputed here on the same tasks as references.

Training runs go to ``--runs/<config name>``. A run already there whose ``config.yaml`` is
the config this script would train, and which finished training, is reused (its training
wall time is read from ``timings.json`` there); ``--stage train`` trains the missing runs
and stops; ``--skip-training`` trains nothing and lists the rows whose runs are missing.
The table section of ``--output`` between the markers below is replaced; the rest of the
file is kept.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unigen_sb3.evaluation.baselines import TABLE_METRICS

START = "<!-- learned-baselines:start (benchmarks/learned_baselines.py writes this part) -->"
END = "<!-- learned-baselines:end -->"

RL_CONFIGS: dict[str, str] = {
    "quickstart": "unified agent: PPO on R_total (quickstart)",
    "baseline_quality": "R_quality alone",
    "baseline_edit": "R_edit alone",
    "baseline_consistency": "R_consistency alone",
    "baseline_raw_sum": "raw sum of the 7 sub-metrics (no normalization)",
    "baseline_generate_only": "generate-only specialist",
    "baseline_edit_only": "edit-only specialist",
}
TASKS = ("unified", "generate", "edit")
ROWS_EXPLAINED = (
    "The baselines a trained agent is placed between. The RL rows are the same algorithm, "
    "policy, action encoding, budget and seed as the unified agent (`quickstart`: PPO, "
    "CnnPolicy, the `discrete` library); each shipped config changes only what its row "
    "names (`tests/test_learned_baselines.py` checks the difference):",
    "",
    "- **one component alone**: `baseline_quality`, `baseline_edit`, `baseline_consistency` "
    "(weights 1 / 0 / 0 and so on; the shaping potential on the trained component);",
    "- **raw sum** (`baseline_raw_sum`): `reward.normalization: raw_sum`, the plain sum of the "
    "seven raw sub-metrics in [0, 7], no [0, 1] normalization and no weights (see "
    "docs/reward.md: doing nothing already collects the guards, about 3);",
    "- **specialists**: `baseline_generate_only` and `baseline_edit_only` train on one task "
    "kind and are scored on every set; the routed pair (`TaskKindRouter`) gives each episode "
    "to the specialist of its kind, read from the observation (the `is_edit` entry of the "
    "prompt encoding), never from the task or the target;",
    "- **behaviour cloning**: `unigen-sb3 demos` records the Oracle in quickstart's training "
    "stack (training prompts, its observations, its actions encoded as `discrete` library "
    "indices), `unigen-sb3 bc` fits quickstart's PPO CnnPolicy network to them by maximum "
    "likelihood with held-out episodes for early stopping, and writes a run directory that "
    "`unigen-sb3 eval` takes like any run (docs/experiments.md);",
    "- **CEM planner** (`unigen_sb3.evaluation.planner.CEMPlanner`), **privileged**: at every "
    "step it copies the episode into a population core and scores each candidate hybrid "
    "action (op and continuous parameters) by the reward the env would pay if the episode "
    "ended after it, which reads the hidden target: an optimization bar, not an agent. "
    "Budget = candidates scored per step (4 rounds of CEM).",
)
DEMO_SEED = 100_000  # demos come from training prompts and seeds far from the evaluation's
COLUMNS = TABLE_METRICS  # the columns of the scripted baselines' comparison table


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


def train_runs(root: Path, overrides: list[str], *, train_missing: bool) -> dict[str, float]:
    """Train every RL config into ``root/<name>`` (or reuse a finished run of the same config).

    :param overrides: ``dotted.key=value`` overrides applied to every config.
    :param train_missing: train the configs without a finished run (else leave them out).
    :return: config name -> training wall time in seconds, for the runs that are ready.
    """
    from unigen_sb3.configs import load_config
    from unigen_sb3.configs.loader import load_yaml
    from unigen_sb3.configs.schema import config_to_dict
    from unigen_sb3.experiments.rundir import RunDir
    from unigen_sb3.experiments.runner import train

    timings_path = root / "timings.json"
    timings: dict[str, float] = _load_json(timings_path)
    ready: dict[str, float] = {}
    for name in RL_CONFIGS:
        config = load_config(name, overrides)
        out = root / name
        if (
            (out / "config.yaml").exists()
            and load_yaml(out / "config.yaml") == config_to_dict(config)
            and RunDir(out).read_meta().get("status") in ("trained", "completed")
            and name in timings
        ):
            print(f"{name}: reusing the finished run in {out} ({timings[name]:.0f} s)", flush=True)
            ready[name] = timings[name]
            continue
        if not train_missing:
            print(f"{name}: no finished run in {out}; left out (--skip-training)", flush=True)
            continue
        print(f"{name}: training into {out}", flush=True)
        t0 = time.perf_counter()
        train(config, out, overwrite=True, evaluate=False)
        timings[name] = ready[name] = time.perf_counter() - t0
        root.mkdir(parents=True, exist_ok=True)
        timings_path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n", "utf-8")
        print(f"{name}: {timings[name]:.0f} s", flush=True)
    return ready


def _spec(task: str, overrides: list[str]) -> Any:
    """The evaluation spec of a task set: quickstart's stack, that task kind, held-out."""
    from unigen_sb3.configs import load_config
    from unigen_sb3.spec import UniGenSpec

    spec = UniGenSpec.from_config(load_config("quickstart", overrides), evaluation=True)
    return spec.replace(task=task, weights={"quality": 0.4, "edit": 0.4, "consistency": 0.2})


def _same(model: Any) -> Any:
    """``model`` itself: the factory of a policy that is already loaded."""
    return model


def _load_model(run: Path) -> Any:
    from unigen_sb3.configs import load_config
    from unigen_sb3.experiments.algorithms import get_algorithm_class
    from unigen_sb3.experiments.rundir import RunDir

    RunDir(run).verify(run / "model.zip")
    config = load_config(run / "config.yaml")
    return get_algorithm_class(config.algorithm.name).load(run / "model.zip", device="cpu")


def evaluate_all(
    policies: dict[str, tuple[Callable[[], Any], tuple[str, ...]]],
    episodes: int,
    overrides: list[str],
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Evaluate every policy on its task sets.

    :param policies: row -> (a function giving the policy, the task sets to evaluate it on).
        The function is called once per set, so a seeded policy (Random, the planner) starts
        from its seed on each set, as in ``benchmarks/baselines.py``.
    :return: ``"<task>/<row>" -> eval report`` and row -> evaluation wall time (its sets).
    """
    from unigen_sb3.evaluation import evaluate_unigen

    reports: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    for row, (make_policy, tasks) in policies.items():
        t0 = time.perf_counter()
        for task in tasks:
            spec = _spec(task, overrides)
            reports[f"{task}/{row}"] = evaluate_unigen(make_policy(), spec, episodes, seed=0)
            total = reports[f"{task}/{row}"]["metrics"]["reward_total"]["mean"]
            print(f"{row}: {task} R_total {total:.3f}", flush=True)
        seconds[row] = time.perf_counter() - t0
        print(f"{row}: {seconds[row]:.0f} s", flush=True)
    return reports, seconds


def _cell(report: dict[str, Any], key: str) -> str:
    m = report["metrics"][key]
    return f"{m['mean']:.3f} ({m['std']:.3f})"


def _table(reports: dict[str, dict[str, Any]], rows: dict[str, str], task: str) -> list[str]:
    lines = [
        "| baseline | " + " | ".join(COLUMNS.values()) + " | prompt-swap drop |",
        "|---|" + "---:|" * (len(COLUMNS) + 1),
    ]
    for row, label in rows.items():
        report = reports.get(f"{task}/{row}")
        if report is None:
            continue
        swap = report.get("prompt_swap")
        drop = f"{swap['drop']:.3f}" if swap else "n/a"
        cells = " | ".join(_cell(report, k) for k in COLUMNS)
        lines.append(f"| {label} | {cells} | {drop} |")
    return lines


def _verdicts(reports: dict[str, dict[str, Any]], rows: dict[str, str], episodes: int) -> list[str]:
    """Which rows the unified agent beats on the unified set, by how much (in standard errors
    of the difference of two means of ``episodes`` episodes each)."""
    agent = reports["unified/quickstart"]["metrics"]["reward_total"]
    out = []
    for row, label in rows.items():
        if row == "quickstart" or f"unified/{row}" not in reports:
            continue
        other = reports[f"unified/{row}"]["metrics"]["reward_total"]
        diff = agent["mean"] - other["mean"]
        se = math.sqrt((agent["std"] ** 2 + other["std"] ** 2) / episodes)
        z = diff / se if se > 0 else math.inf if diff > 0 else -math.inf if diff < 0 else 0.0
        verdict = "beats" if z > 2 else "loses to" if z < -2 else "ties with (|z| <= 2)"
        out.append(f"- {verdict} {label}: {diff:+.3f} R_total (z = {z:+.1f})")
    return out


def write_section(path: Path, section: str) -> None:
    """Replace the part of ``path`` between :data:`START` and :data:`END` (append it when the
    markers are not there yet)."""
    text = path.read_text("utf-8") if path.exists() else ""
    block = f"{START}\n{section.rstrip()}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/baselines"))
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--budgets", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument(
        "--planner-tasks",
        nargs="+",
        choices=TASKS,
        default=list(TASKS),
        help="task sets the planner is evaluated on (its largest cost)",
    )
    parser.add_argument(
        "--demos",
        type=int,
        nargs="+",
        default=[512, 4096],
        help="Oracle demo episodes per behaviour-cloning row (one row per count; the demos of "
        "a smaller count are the first episodes of a larger one: the same seeds)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stage", choices=("all", "train"), default="all")
    parser.add_argument(
        "--skip-training",
        action="store_true",
        help="train nothing: evaluate the finished runs and list the missing ones",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run (e.g. a smoke test: env.size=36)",
    )
    parser.add_argument("--output", type=Path, default=Path("docs/baselines.md"))
    args = parser.parse_args()
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    overrides = list(args.overrides)
    if args.threads is not None:
        overrides.append(f"training.torch_threads={args.threads}")
    timings = train_runs(args.runs, overrides, train_missing=not args.skip_training)
    if args.stage == "train":
        return

    from unigen_sb3.configs import load_config
    from unigen_sb3.envs.policies import NoOpPolicy, OraclePolicy, RandomPolicy
    from unigen_sb3.evaluation.planner import CEMPlanner
    from unigen_sb3.evaluation.routing import TaskKindRouter
    from unigen_sb3.experiments.bc import train_bc
    from unigen_sb3.experiments.demos import collect_demos

    quickstart = load_config("quickstart", overrides)
    env = quickstart.env
    cloned: dict[int, tuple[Any, Any, float]] = {}  # count -> (demos, BC result, collect s)
    for count in args.demos:
        t0 = time.perf_counter()
        demos = collect_demos(
            quickstart,
            args.runs / f"demos_{count}",
            n_episodes=count,
            seed=DEMO_SEED,
            overwrite=True,
        )
        seconds = time.perf_counter() - t0
        bc = train_bc(demos, quickstart, args.runs / f"bc_{count}", overwrite=True)
        cloned[count] = (demos, bc, seconds)
        print(f"bc_{count}: collected in {seconds:.0f} s, cloned in {bc.seconds:.0f} s", flush=True)

    models = {name: _load_model(args.runs / name) for name in RL_CONFIGS if name in timings}
    if "baseline_generate_only" in models and "baseline_edit_only" in models:
        models["router"] = TaskKindRouter(
            models["baseline_generate_only"], models["baseline_edit_only"]
        )
    for count in args.demos:
        models[f"bc_{count}"] = _load_model(args.runs / f"bc_{count}")
    policies: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
        name: (functools.partial(_same, model), TASKS) for name, model in models.items()
    }
    planner_tasks = tuple(t for t in TASKS if t in args.planner_tasks)
    for budget in args.budgets:
        policies[f"cem{budget}"] = (functools.partial(CEMPlanner, budget, seed=0), planner_tasks)
    policies["oracle"] = (OraclePolicy, TASKS)
    policies["random"] = ((lambda: RandomPolicy(seed=0)), TASKS)
    policies["noop"] = (NoOpPolicy, TASKS)
    labels = dict(RL_CONFIGS)
    labels["router"] = "specialists routed by observed task kind (TaskKindRouter)"
    for count in args.demos:
        labels[f"bc_{count}"] = f"behaviour cloning, {count} Oracle demos (PPO policy net)"
    for budget in args.budgets:
        labels[f"cem{budget}"] = f"CEM planner, {budget} reward evaluations / step (privileged)"
    labels["oracle"] = "Oracle (privileged)"
    labels["random"] = "Random"
    labels["noop"] = "NoOp (stop at once)"
    missing = [labels[name] for name in (*RL_CONFIGS, "router") if name not in models]
    labels = {row: label for row, label in labels.items() if row in policies}
    reports, eval_seconds = evaluate_all(policies, args.episodes, overrides)
    args.runs.mkdir(parents=True, exist_ok=True)
    (args.runs / "reports.json").write_text(json.dumps(reports, indent=1, sort_keys=True))

    per_row_time = []
    for row, label in labels.items():
        train_s = timings.get(row)
        if row.startswith("bc_"):
            _, bc, seconds = cloned[int(row[3:])]
            train_s = seconds + bc.seconds
        sets = ", ".join(policies[row][1])
        per_row_time.append(
            f"| {label} | {'' if train_s is None else f'{train_s:.0f}'} | "
            f"{eval_seconds[row]:.0f} ({sets}) |"
        )
    planner_rows = []
    for budget in args.budgets:
        cells = [
            f"{reports[f'{t}/cem{budget}']['metrics']['reward_total']['mean']:.3f}"
            for t in planner_tasks
        ]
        planner_rows.append(f"| {budget} | " + " | ".join(cells) + " |")
    oracle_cells = [
        f"{reports[f'{t}/oracle']['metrics']['reward_total']['mean']:.3f}" for t in planner_tasks
    ]
    command = (
        f"python benchmarks/learned_baselines.py --runs {args.runs} --episodes {args.episodes} "
        f"--budgets {' '.join(map(str, args.budgets))} --demos {' '.join(map(str, args.demos))}"
        + (f" --planner-tasks {' '.join(planner_tasks)}" if planner_tasks != TASKS else "")
        + (f" --threads {args.threads}" if args.threads is not None else "")
        + (" --skip-training" if args.skip_training else "")
        + "".join(f" --set {o}" for o in args.overrides)
    )
    not_run = []
    if missing:
        not_run.append(
            f"- Not in this table (their runs were not trained in this session's time): "
            f"{'; '.join(missing)}. The same command without `--skip-training` trains the "
            "missing runs, reuses the finished ones and rewrites this section."
        )
    if planner_tasks != TASKS:
        not_run.append(
            f"- The CEM planner was evaluated on the {', '.join(planner_tasks)} set(s) only "
            "(`--planner-tasks`); add the others to `--planner-tasks` to fill their tables."
        )
    section = "\n".join(
        [
            "## Learned and planning baselines",
            "",
            *ROWS_EXPLAINED,
            "",
            f"Command: `{command}` ({time.perf_counter() - t_start:.0f} s in this invocation; "
            "training runs reused from an earlier invocation count only in the per-row times "
            "below). Every row is scored by the evaluation suite "
            "(`evaluate_unigen`) with the base weights (0.4 / 0.4 / 0.2) on the seeded held-out "
            f"task sets of the table above ({args.episodes} episodes, episode j of a set uses "
            f"seed j, {env.size}x{env.size}, horizon {env.horizon}): mean (population std) "
            "over episodes. The prompt-swap drop is what a model loses when each episode "
            "observes another episode's prompt (n/a: scripted policies and the planner read "
            f"their task, not the observation). Every RL row is one seed (seed {quickstart.seed}) "
            f"at quickstart's budget ({quickstart.training.total_timesteps} timesteps), with "
            f"torch threads {quickstart.training.torch_threads or 'torch default'}.",
            "",
            *not_run,
            *([""] if not_run else []),
            *[
                line
                for task in TASKS
                for line in (f"### {task} tasks", "", *_table(reports, labels, task), "")
            ],
            "### Where the unified agent stands (unified tasks)",
            "",
            "z: the difference over its standard error (two independent means of "
            f"{args.episodes} episodes); |z| <= 2 is a tie at this sample size.",
            "",
            *_verdicts(reports, labels, args.episodes),
            "",
            "### CEM planner: score vs budget",
            "",
            "Mean R_total per task set; the budget is the number of candidate actions whose "
            "reward is evaluated per env step.",
            "",
            "| reward evaluations / step | " + " | ".join(planner_tasks) + " |",
            "|---:|" + "---:|" * len(planner_tasks),
            *planner_rows,
            "| Oracle | " + " | ".join(oracle_cells) + " |",
            "",
            "### Behaviour cloning",
            "",
            "| demo episodes (steps) | not in the library | trained on: episodes (steps) | "
            "held out: episodes (steps) | best epoch / epochs | held-out accuracy | held-out "
            "loss | collecting (s) | training (s) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *[
                f"| {d.manifest['n_episodes']} ({d.manifest['n_steps']}) | "
                f"{d.manifest['n_nearest']} | {b.train_episodes} ({b.train_samples}) | "
                f"{b.val_episodes} ({b.val_samples}) | {b.best_epoch} / {b.epochs} | "
                f"{b.val_accuracy:.3f} | {b.val_loss:.3f} | {sec:.0f} | {b.seconds:.0f} |"
                for d, b, sec in cloned.values()
            ],
            "",
            f"Demos: Oracle episodes on training prompts, seeds {DEMO_SEED} onward (a smaller "
            "set is the first episodes of a larger one). Not in the library: Oracle actions "
            "the `discrete` encoding cannot carry, replaced by the nearest entry"
            + (
                " (none here: every prompt's solution is one library entry or two)"
                if all(d.manifest["n_nearest"] == 0 for d, _, _ in cloned.values())
                else ""
            )
            + ". Held-out accuracy: the share of held-out steps whose most likely action is "
            "the Oracle's.",
            "",
            "### Wall time per row",
            "",
            "| baseline | training (s) | evaluation (s) (its sets) |",
            "|---|---:|---:|",
            *per_row_time,
        ]
    )
    write_section(args.output, section)
    print(section)


if __name__ == "__main__":
    main()
