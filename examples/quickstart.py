"""Quickstart in Python: PPO (CnnPolicy) on make_unigen_env(), then the baselines table.

``python examples/quickstart.py --out runs/quickstart_py`` trains 4096 timesteps in one
env (64 x 64 canvas, ``box`` actions, SB3's DummyVecEnv), then evaluates the model, Random,
NoOp, Blind and Oracle on 32 held-out episodes each (``--timesteps``, ``--episodes``).
4096 steps are far too few to learn to follow prompts: read the model's row against Blind
(the best prompt-blind action sequence) and the Oracle. ``make run`` trains a different
setup through the ``unigen-sb3`` CLI: ``configs/quickstart.yaml``, 16384 timesteps in 8
batched envs, ``discrete`` actions.
Writes ``model.zip``, ``before_after.png`` (start | trained agent's result | target for
held-out tasks) and ``baselines.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image
from stable_baselines3 import PPO

from unigen_sb3 import make_unigen_env
from unigen_sb3.evaluation.baselines import (
    before_after_image,
    compare_with_baselines,
    comparison_table,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart_py"))
    parser.add_argument("--timesteps", type=int, default=4096)
    parser.add_argument("--episodes", type=int, default=32, help="evaluation episodes per policy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model = PPO("CnnPolicy", make_unigen_env(seed=args.seed), n_steps=256, seed=args.seed)
    model.learn(args.timesteps)
    model.save(args.out / "model.zip")

    env_config = {"task": "unified"}  # make_unigen_env's defaults otherwise
    reports = compare_with_baselines(model, env_config, args.episodes, seed=10_000)
    print(comparison_table(reports))
    (args.out / "baselines.json").write_text(json.dumps(reports, indent=2, sort_keys=True))
    image = before_after_image(model, env_config, 4, seed=10_000, model_name="PPO")
    Image.fromarray(image).save(args.out / "before_after.png")


if __name__ == "__main__":
    main()
