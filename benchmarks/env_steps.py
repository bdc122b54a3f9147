"""Single-env speed: steps/s of ``UniGenEnv`` and of the full ``make_unigen_env()`` stack.

Usage: ``python benchmarks/env_steps.py [--size 64] [--steps 300] [--device cpu]
[--output docs/benchmarks/env_steps.md]``. Random actions, default unified reward (every step
computes all three components: one perceptual forward of the canvas, SSIMs, CIELAB).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from unigen_sb3 import UniGenEnv, make_unigen_env


def steps_per_second(env, n_steps: int, seed: int = 0) -> float:  # type: ignore[no-untyped-def]
    """Rate over ``n_steps`` random steps after a 20-step warm-up."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(20):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    t0 = time.perf_counter()
    for _ in range(n_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks/env_steps.md"))
    args = parser.parse_args()
    raw = UniGenEnv(size=args.size, device=args.device)
    stack = make_unigen_env(size=args.size, device=args.device)
    rates = {
        "UniGenEnv (raw, vector reward)": steps_per_second(raw, args.steps),
        "make_unigen_env() stack (float reward, Box action, image obs)": steps_per_second(
            stack, args.steps
        ),
    }
    load = os.getloadavg()[0]
    lines = [
        "# Single-env step speed",
        "",
        f"Command: `python benchmarks/env_steps.py --size {args.size} --steps {args.steps} "
        f"--device {args.device}`  ",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"{args.size}x{args.size}, random actions, default unified reward; "
        f"1-minute load average before the run {load:.2f} on {os.cpu_count()} CPUs.",
        "",
        "| env | steps/s | ms/step |",
        "|---|---:|---:|",
        *[f"| {k} | {v:.1f} | {1000 / v:.1f} |" for k, v in rates.items()],
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
