"""Hybrid policy vs flat encodings: held-out score at the same budget and seeds.

Usage::

    python benchmarks/hybrid_vs_flat.py [--seeds 0 1 2 3 4] [--budgets 8192 16384]
        [--tasks edit unified] [--episodes 32] [--eval-every 2048]
        [--jobs 1] [--threads N] [--output docs/benchmarks/hybrid_vs_flat.md]
    python benchmarks/hybrid_vs_flat.py --smoke     # a tiny budget, seconds; writes nothing

``--jobs 2 --threads 1`` trains two runs at once, each in its own process with one torch
thread (on 2 cores about 1.5-2x faster than one run at a time on both); the table is the same
as ``--jobs 1 --threads 1`` gives, since a run depends only on its config and thread count.

Methods, all on ``configs/quickstart.yaml`` (48 x 48, horizon 8, its weights, shaping,
PPO hyperparameters, 8 batched envs); only the algorithm, policy and action encoding change:

- ``PPO + HybridCnnPolicy`` (``box``, ``algorithm.policy: hybrid``);
- ``PPO + CnnPolicy`` on ``box`` (one diagonal Gaussian over 6 op scores + 8 params);
- ``MaskablePPO + CnnPolicy`` on ``multidiscrete`` (masks in training);
- ``PPO + CnnPolicy`` on ``discrete`` (the quickstart's choice).

Every trained model is scored with :func:`unigen_sb3.evaluation.evaluate_unigen` on the same
held-out task set (``--episodes`` episodes from ``--eval-seed``; deterministic actions, no
masks passed, for every method alike), as the normalized score
``(R - R_Random) / (R_Oracle - R_Random)`` where R is the mean held-out ``reward_total`` and
Random / Oracle are :mod:`unigen_sb3.envs.policies`' scripted baselines on that same set.
Reported per task: mean +- std over seeds at each budget; the steps to a score of 0.7
(evaluated every ``--eval-every`` timesteps; mean over the seeds that reached it, and how
many did); the margin over the Blind baseline, ``(R - R_Blind) / (R_Oracle - R_Random)``, at
the last budget; and the ops each method picks on the held-out episodes, by task kind.

The Blind baseline's score comes from
``unigen_sb3.evaluation.baselines.blind_baseline_score(env_config, n_episodes, seed)`` (the
best prompt-blind action sequence); ``--skip-blind`` leaves that column out.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigen_sb3.configs import ExperimentConfig, load_config
from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.envs.canvas import OPS
from unigen_sb3.envs.policies import OraclePolicy, RandomPolicy
from unigen_sb3.evaluation import evaluate_unigen, evaluation_rollout
from unigen_sb3.evaluation.baselines import blind_baseline_score
from unigen_sb3.experiments.algorithms import algorithm_gamma
from unigen_sb3.experiments.runner import (
    build_model,
    check_experiment,
    make_shaping,
    make_train_vec_env,
)
from unigen_sb3.experiments.seeding import seed_everything
from unigen_sb3.spec import UniGenSpec

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = shipped_config_path("quickstart")
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks" / "hybrid_vs_flat.md"
TARGET_SCORE = 0.7

#: Method name -> config overrides on top of the quickstart.
METHODS: dict[str, list[str]] = {
    "PPO + HybridCnnPolicy (box)": [
        "algorithm.name=PPO",
        "env.action=box",
        "algorithm.policy=hybrid",
    ],
    "PPO + CnnPolicy (box)": ["algorithm.name=PPO", "env.action=box", "algorithm.policy=null"],
    "MaskablePPO + CnnPolicy (multidiscrete)": [
        "algorithm.name=MaskablePPO",
        "env.action=multidiscrete",
        "algorithm.policy=null",
    ],
    "PPO + CnnPolicy (discrete)": [
        "algorithm.name=PPO",
        "env.action=discrete",
        "algorithm.policy=null",
    ],
}

#: ``--smoke``: the smallest settings that still run every code path.
SMOKE = [
    "env.size=36",
    "env.horizon=4",
    "training.n_envs=2",
    "algorithm.kwargs={n_steps: 16, batch_size: 32, n_epochs: 1}",
]

BlindScore = Callable[[UniGenSpec, int, int], float]
"""``blind_baseline_score(env_config, n_episodes, seed)``: the Blind baseline's mean R_total."""


@dataclass
class Run:
    """One (task, method, seed) training run: the scores on the way."""

    curve: list[tuple[int, float]] = field(default_factory=list)  # (timesteps, score)
    at_budget: dict[int, float] = field(default_factory=dict)
    reward: float = float("nan")  # mean held-out reward_total at the last budget


@dataclass
class Reference:
    """The scripted references of one task on the held-out set."""

    random: float
    oracle: float
    blind: float | None

    def normalize(self, reward: float) -> float:
        return (reward - self.random) / (self.oracle - self.random)


def method_config(base: list[str], method: str, task: str, seed: int) -> ExperimentConfig:
    return load_config(QUICKSTART, [*base, *METHODS[method], f"env.task={task}", f"seed={seed}"])


def references(
    config: ExperimentConfig, episodes: int, eval_seed: int, blind: BlindScore | None
) -> Reference:
    """Random, Oracle (and Blind) mean held-out reward_total on the evaluation task set."""
    cfg = UniGenSpec.from_config(config, evaluation=True)

    def mean_reward(policy: Any) -> float:
        report = evaluate_unigen(policy, cfg, episodes, eval_seed, prompt_split="heldout")
        return float(report["metrics"]["reward_total"]["mean"])

    blind_score = float(blind(cfg, episodes, eval_seed)) if blind is not None else None
    return Reference(
        mean_reward(RandomPolicy(seed=eval_seed)), mean_reward(OraclePolicy()), blind_score
    )


def train_and_score(
    config: ExperimentConfig,
    budgets: list[int],
    eval_every: int,
    episodes: int,
    eval_seed: int,
    ref: Reference,
    counts: dict[str, Counter[int]],
) -> Run:
    """Train one method on one seed up to the last budget, scoring it on the way.

    Built exactly as ``unigen-sb3 train`` builds it (seeding, shaping with the algorithm's
    gamma, the batched training VecEnv, the model); the ops of the last evaluation are
    added to ``counts``.
    """
    seed_everything(config.seed)
    cls, _ = check_experiment(config)
    shaping = make_shaping(config, algorithm_gamma(cls, config.algorithm.kwargs))
    env = make_train_vec_env(config, shaping)
    model = build_model(config, env)
    cfg = UniGenSpec.from_config(config, evaluation=True)
    checkpoints = sorted({*range(eval_every, budgets[-1] + 1, eval_every), *budgets})
    run = Run()
    try:
        for steps in checkpoints:
            if model.num_timesteps < steps:
                model.learn(steps - model.num_timesteps, reset_num_timesteps=False)
            last = steps == budgets[-1]
            if last:
                # The ops of the held-out episodes, counted per task kind (live steps only).
                rollout, *_ = evaluation_rollout(
                    model, cfg, episodes, eval_seed, prompt_split="heldout"
                )
                for task, actions in zip(rollout.tasks, rollout.actions, strict=True):
                    counts.setdefault(task.kind, Counter()).update(op for op, _ in actions)
            report = evaluate_unigen(model, cfg, episodes, eval_seed, prompt_split="heldout")
            reward = float(report["metrics"]["reward_total"]["mean"])
            run.curve.append((model.num_timesteps, ref.normalize(reward)))
            if steps in budgets:
                run.at_budget[steps] = ref.normalize(reward)
            if last:
                run.reward = reward
    finally:
        env.close()
    return run


def steps_to_target(runs: list[Run], target: float = TARGET_SCORE) -> str:
    """``"mean steps (k/n seeds)"`` over the seeds whose score reached ``target``."""
    reached = [next((t for t, s in r.curve if s >= target), None) for r in runs]
    hits = [t for t in reached if t is not None]
    if not hits:
        return f"not reached (0/{len(runs)})"
    return f"{np.mean(hits):.0f} ({len(hits)}/{len(runs)})"


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} +- {np.std(values):.3f}"


def markdown(
    args: argparse.Namespace,
    refs: dict[str, Reference],
    runs: dict[tuple[str, str], list[Run]],
    counts: dict[tuple[str, str], dict[str, Counter[int]]],
    seconds: float,
    command: str,
) -> str:
    budgets = args.budgets
    head = " | ".join(f"score @ {b}" for b in budgets)
    lines = [
        "# Hybrid policy vs flat encodings",
        "",
        f"Produced by `{command}` ({seconds:.0f} s on this machine's "
        f"{'GPU' if torch.cuda.is_available() else 'CPU'}); see the script's docstring for "
        "the definitions. Quickstart settings (`configs/quickstart.yaml`) unless the command "
        f"says otherwise; seeds {list(args.seeds)}; {args.episodes} held-out evaluation "
        f"episodes from seed {args.eval_seed}, deterministic actions, no masks passed at "
        "evaluation (for every method).",
        "",
        "Score = (R - R_Random) / (R_Oracle - R_Random), R the mean held-out R_total; "
        f"mean +- std over seeds. Steps to {TARGET_SCORE}: first evaluation (every "
        f"{args.eval_every} timesteps) at or above it, mean over the seeds that reached it. "
        "Margin over Blind: (R - R_Blind) / (R_Oracle - R_Random) at the last budget.",
        "",
        "| task | R_Random | R_Oracle | R_Blind |",
        "|---|---:|---:|---:|",
    ]
    for task, ref in refs.items():
        blind = f"{ref.blind:.3f}" if ref.blind is not None else "n/a"
        lines.append(f"| {task} | {ref.random:.3f} | {ref.oracle:.3f} | {blind} |")
    lines += [
        "",
        f"| task | method | {head} | steps to {TARGET_SCORE} | margin over Blind |",
        "|---|---|" + "---:|" * (len(budgets) + 2),
    ]
    for (task, method), rs in runs.items():
        scores = " | ".join(mean_std([r.at_budget[b] for r in rs]) for b in budgets)
        ref = refs[task]
        if ref.blind is None:
            margin = "n/a"
        else:
            margin = mean_std([(r.reward - ref.blind) / (ref.oracle - ref.random) for r in rs])
        lines.append(f"| {task} | {method} | {scores} | {steps_to_target(rs)} | {margin} |")
    lines += [
        "",
        f"Ops picked on the held-out episodes at {budgets[-1]} timesteps (share of the steps "
        "of live episodes, all seeds pooled), by task kind:",
        "",
        "| task | method | kind | " + " | ".join(OPS) + " | steps |",
        "|---|---|---|" + "---:|" * (len(OPS) + 1),
    ]
    for (task, method), by_kind in counts.items():
        for kind in sorted(by_kind):
            c = by_kind[kind]
            total = sum(c.values())
            shares = " | ".join(f"{c[k] / total:.2f}" for k in range(len(OPS)))
            lines.append(f"| {task} | {method} | {kind} | {shares} | {total} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budgets", type=int, nargs="+", default=[8192, 16384])
    parser.add_argument("--tasks", nargs="+", default=["edit", "unified"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--episodes", type=int, default=32, help="held-out evaluation episodes")
    parser.add_argument("--eval-seed", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=2048, help="timesteps between scores")
    parser.add_argument("--output", type=Path, default=None, help=f"default: {DEFAULT_OUTPUT}")
    parser.add_argument("--skip-blind", action="store_true", help="run without the Blind column")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs trained at once, each in its own process"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads of each run (default: torch's own; give 1 with --jobs 2 on 2 "
        "cores). A run's last digits depend on it, so the table names it in its command",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny settings (36 x 36, horizon 4, 2 envs, budgets 32 64, 2 episodes, seed 0); "
        "writes only --output if given",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.budgets, args.episodes, args.eval_every = [0], [32, 64], 2, 32
    args.budgets = sorted(set(args.budgets))
    if args.budgets[0] < 1 or args.eval_every < 1 or args.episodes < 2:
        parser.error("budgets and --eval-every must be >= 1, --episodes >= 2")
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        parser.error(f"--jobs and --threads must be >= 1, got {args.jobs} and {args.threads}")
    if not args.smoke and len(args.seeds) < 5:
        parser.error(f"--seeds needs at least 5 seeds for a comparison, got {args.seeds}")
    if args.output is None and not args.smoke:
        args.output = DEFAULT_OUTPUT
    return args


def _unit(
    base: list[str], method: str, task: str, seed: int, args: argparse.Namespace, ref: Reference
) -> tuple[Run, dict[str, Counter[int]]]:
    """One (task, method, seed) run, with ``--threads`` torch threads (also in a spawned
    worker): its scores and its op counts by task kind."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    per_kind: dict[str, Counter[int]] = {}
    run = train_and_score(
        method_config(base, method, task, seed),
        args.budgets,
        args.eval_every,
        args.episodes,
        args.eval_seed,
        ref,
        per_kind,
    )
    return run, per_kind


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    blind: BlindScore | None = None if args.skip_blind else blind_baseline_score
    base = SMOKE if args.smoke else []
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    refs: dict[str, Reference] = {}
    for task in args.tasks:
        first = method_config(base, args.methods[0], task, args.seeds[0])
        refs[task] = references(first, args.episodes, args.eval_seed, blind)
    units = [(t, m, s) for t in args.tasks for m in args.methods for s in args.seeds]
    results: dict[tuple[str, str, int], tuple[Run, dict[str, Counter[int]]]] = {}

    def report(unit: tuple[str, str, int], run: Run) -> None:
        task, method, seed = unit
        print(
            f"{task:8s} {method:42s} seed {seed}: "
            + ", ".join(f"{b}: {run.at_budget[b]:.3f}" for b in args.budgets),
            flush=True,
        )

    if args.jobs == 1:
        for unit in units:
            results[unit] = _unit(base, unit[1], unit[0], unit[2], args, refs[unit[0]])
            report(unit, results[unit][0])
    else:
        # Each run in its own spawned process: a run's numbers depend only on its config and
        # its torch threads (--threads), not on which process or in what order it ran.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = {
                pool.submit(_unit, base, m, t, s, args, refs[t]): (t, m, s) for t, m, s in units
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                report(futures[future], results[futures[future]][0])
    runs: dict[tuple[str, str], list[Run]] = {}
    counts: dict[tuple[str, str], dict[str, Counter[int]]] = {}
    for task, method, seed in units:  # the table in the plan's order, whatever ran first
        run, per_kind = results[(task, method, seed)]
        runs.setdefault((task, method), []).append(run)
        merged = counts.setdefault((task, method), {})
        for kind, counter in per_kind.items():
            merged.setdefault(kind, Counter()).update(counter)
    command = "python benchmarks/hybrid_vs_flat.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = markdown(args, refs, runs, counts, time.perf_counter() - t0, command.strip())
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
