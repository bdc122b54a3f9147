"""Compare a trained run with the Random, NoOp, Blind and Oracle baselines (`make run`'s 2nd half).

Usage: ``python examples/compare_baselines.py RUN_DIR`` where RUN_DIR was written by
``unigen-sb3 train``. Uses the run's config (env, evaluation episodes, seed, held-out split),
prints a Markdown table, and writes ``RUN_DIR/baselines.json`` and
``RUN_DIR/before_after.png`` (start | trained agent's result | target, held-out tasks of
both kinds, titled, with each row's prompt).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from unigen_sb3.configs import load_config
from unigen_sb3.evaluation.baselines import (
    before_after_image,
    compare_with_baselines,
    comparison_table,
)
from unigen_sb3.experiments.algorithms import get_algorithm_class
from unigen_sb3.experiments.runner import eval_seed
from unigen_sb3.spec import UniGenSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    config = load_config(args.run_dir / "config.yaml")
    model = get_algorithm_class(config.algorithm.name).load(args.run_dir / "model.zip")
    spec = UniGenSpec.from_config(config, evaluation=True)
    seed = eval_seed(config)
    split = config.evaluation.prompt_split
    n = config.evaluation.n_episodes
    reports = compare_with_baselines(
        model, spec, n, seed, prompt_split=split, model_name=config.algorithm.name
    )
    print(
        f"\n{n} {split} {config.env.task} tasks (seed {seed}), the same for every policy; "
        "mean (std) per episode:\n"
    )
    print(comparison_table(reports))
    (args.run_dir / "baselines.json").write_text(json.dumps(reports, indent=2, sort_keys=True))
    image = before_after_image(
        model, spec, 4, seed, prompt_split=split, model_name=f"{config.algorithm.name} (trained)"
    )
    Image.fromarray(image).save(args.run_dir / "before_after.png")
    print(
        f"\nResults in {args.run_dir}/: eval.json (the evaluation suite), baselines.json (this "
        f"table), before_after.png (start | trained agent | target, with the prompts), model.zip, "
        f"checkpoints/ and tb/ (tensorboard --logdir {args.run_dir}/tb)"
    )


if __name__ == "__main__":
    main()
