"""Quickstart: train PPO (CnnPolicy) on make_unigen_env(), then compare it with baselines.

Run with ``make run`` or ``python examples/quickstart.py --out runs/quickstart``. On 2 CPU
cores the default budget takes a few minutes. Writes ``before_after.png`` (start | trained
agent's result | target for a few held-out tasks), ``model.zip`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from stable_baselines3 import PPO

from unigen_sb3 import make_unigen_env
from unigen_sb3.envs.policies import (
    ModelPolicy,
    NoOpPolicy,
    OraclePolicy,
    RandomPolicy,
    episode_returns,
)


def before_after(model: PPO, n: int, seed: int) -> np.ndarray:
    """Rows of start | agent's final canvas | target for ``n`` held-out tasks."""
    env = make_unigen_env(seed=seed, prompt_split="heldout")
    rows = []
    for j in range(n):
        obs, _ = env.reset(seed=seed + j)
        core = env.unwrapped.core  # type: ignore[attr-defined]
        start = core.observations()["canvas"][0]
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        raw = core.observations()
        rows.append(np.concatenate([start, raw["canvas"][0], raw["target"][0]], axis=2))
    return np.concatenate(rows, axis=1).transpose(1, 2, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--timesteps", type=int, default=3072)
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per policy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    env = make_unigen_env(seed=args.seed)
    model = PPO("CnnPolicy", env, n_steps=256, batch_size=64, n_epochs=4, seed=args.seed)
    t0 = time.perf_counter()
    model.learn(args.timesteps)
    train_s = time.perf_counter() - t0
    model.save(args.out / "model.zip")
    Image.fromarray(before_after(model, 4, seed=1000)).resize((192 * 3, 64 * 4 * 3), 0).save(
        args.out / "before_after.png"
    )

    # Held-out prompts, the same 50 seeded tasks for every policy.
    policies = {
        "PPO (trained)": ModelPolicy(model),
        "Random": RandomPolicy(seed=args.seed),
        "NoOp": NoOpPolicy(),
        "Oracle": OraclePolicy(),
    }
    results: dict[str, dict[str, float]] = {}
    for name, policy in policies.items():
        r = episode_returns(
            policy, "unified", n_episodes=args.episodes, seed=10_000, prompt_split="heldout"
        )
        results[name] = {"mean": float(r.mean()), "std": float(r.std())}

    print(
        f"\nPPO CnnPolicy, {args.timesteps} steps in {train_s:.0f} s; "
        f"{args.episodes} held-out unified episodes per policy (R_total, default weights)\n"
    )
    print("| policy | mean return | std |")
    print("|---|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['mean']:.3f} | {r['std']:.3f} |")
    (args.out / "results.json").write_text(
        json.dumps({"timesteps": args.timesteps, "seed": args.seed, "returns": results}, indent=2)
    )
    print(f"\nwrote {args.out}/model.zip, before_after.png, results.json")


if __name__ == "__main__":
    main()
