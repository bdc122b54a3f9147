"""What a trained agent does, not only its score: ops per task kind, the prompt-swap score
and a labelled before/after grid.

Usage: ``python benchmarks/agent_behaviour.py RUN_DIR [--episodes 32] [--grid 6]``, RUN_DIR
written by ``unigen-sb3 train``. On the run's held-out evaluation tasks it prints

- a histogram of the ops the agent chose per task kind (and, for the ``discrete``
  encoding, its most used library entries), and how many distinct action sequences it
  played: one sequence for every prompt means it learned a prompt-blind loophole;
- the prompt-swap counterfactual of ``eval.json`` (the score with prompt encodings swapped
  between episodes of the same kind);

and writes ``RUN_DIR/behaviour.png``: rows of start | agent | target with the prompt
under each row (matplotlib, the ``report`` extra).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from unigen_sb3.configs import load_config
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OPS
from unigen_sb3.evaluation import ModelPolicy, evaluate_unigen, rollout_episodes
from unigen_sb3.experiments.algorithms import get_algorithm_class
from unigen_sb3.experiments.runner import eval_seed
from unigen_sb3.spec import UniGenSpec
from unigen_sb3.wrappers.actions import DiscreteCodec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--grid", type=int, default=6)
    args = parser.parse_args()
    config = load_config(args.run_dir / "config.yaml")
    model = get_algorithm_class(config.algorithm.name).load(args.run_dir / "model.zip")
    spec = UniGenSpec.from_config(config, evaluation=True)
    seed = eval_seed(config)
    rollout = rollout_episodes(ModelPolicy(model), spec, n_episodes=args.episodes, seed=seed)
    kinds = [t.kind for t in rollout.tasks]
    print(f"{args.episodes} held-out episodes, mean R_total {rollout.totals.mean():.3f}")
    for kind in sorted(set(kinds)):
        rows = [i for i, k in enumerate(kinds) if k == kind]
        played = [rollout.actions[i] for i in rows]
        ops = Counter(OPS[op] for seq in played for op, _ in seq)
        sequences = {
            tuple((op, tuple(np.round(params, 2).tolist())) for op, params in seq) for seq in played
        }
        print(f"\n{kind}: {len(rows)} episodes, mean R_total {rollout.totals[rows].mean():.3f}")
        print("  ops: " + ", ".join(f"{op} {n}" for op, n in ops.most_common()))
        print(f"  distinct action sequences: {len(sequences)} of {len(rows)} episodes")
        if config.env.action == "discrete":
            codec = DiscreteCodec(NUM_OPS, NUM_PARAMS, **config.env.action_options)
            entries = Counter(
                int(codec.encode({"op": op, "params": params}))
                for seq in played
                for op, params in seq
            )
            print(
                "  top library entries: "
                + ", ".join(f"{codec.label(i)} x{n}" for i, n in entries.most_common(5))
            )
    report = evaluate_unigen(model, spec, args.episodes, seed, prompt_split="env")
    swap = report["prompt_swap"]
    print(
        f"\nprompt swap: R_total {report['metrics']['reward_total']['mean']:.3f} -> "
        f"{swap['reward_total']:.3f} (drop {swap['drop']:.3f}, {swap['n_swapped']} episodes "
        "saw another prompt)"
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'unigen-sb3[report]'): no grid")
        return
    n = min(args.grid, args.episodes)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2.3 * n), squeeze=False)
    for r in range(n):
        for c, (title, images) in enumerate(
            (("start", rollout.start), ("agent", rollout.final), ("target", rollout.target))
        ):
            ax = axes[r][c]
            ax.imshow(images[r].permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title)
        axes[r][1].set_xlabel(
            f"{rollout.tasks[r].prompt.text}\nR_total {rollout.totals[r]:.2f}", fontsize=7
        )
    fig.tight_layout()
    out = args.run_dir / "behaviour.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
