"""Steps/s with 1 vs 2 (or more) torch threads: what ``training.torch_threads: null`` picks.

Usage: ``python benchmarks/torch_threads.py [--threads 1 2] [--seconds 4]``. For each thread
count, in one process: random-action steps/s of one ``make_unigen_env()`` (64x64, the README
snippet's env), of the quickstart's batched env (8 envs, 48x48, discrete actions) and PPO
training steps/s on the quickstart config (a 1024-timestep ``model.learn``). Results go to
stdout; docs/notes/torch_threads.md records a run.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch


def _rate(step, seconds: float) -> float:  # type: ignore[no-untyped-def]
    for _ in range(10):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    from unigen_sb3 import make_unigen_env, make_unigen_vec_env
    from unigen_sb3.configs.loader import load_config
    from unigen_sb3.configs.shipped import shipped_config_path
    from unigen_sb3.experiments.runner import build_model, make_train_vec_env

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(
        "| torch threads | single env steps/s | batched N=8 48x48 env steps/s "
        "| PPO quickstart timesteps/s |"
    )
    print("|---:|---:|---:|---:|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        env = make_unigen_env(seed=0)
        env.reset(seed=0)
        env.action_space.seed(0)

        def single(env=env) -> None:  # type: ignore[no-untyped-def]
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()

        r_single = _rate(single, args.seconds)
        vec = make_unigen_vec_env(
            8, seed=0, size=48, horizon=8, action="discrete", vec_env_kind="batched"
        )
        vec.reset()
        rng = np.random.default_rng(0)

        def batched(vec: Any = vec, rng: np.random.Generator = rng) -> None:
            vec.step(rng.integers(0, vec.action_space.n, size=8))

        r_vec = _rate(batched, args.seconds) * 8
        vec.close()
        cfg = load_config(shipped_config_path("quickstart"), ["training.tensorboard=false"])
        train_env = make_train_vec_env(cfg)
        model = build_model(cfg, train_env)
        model.learn(512)  # warm-up
        t0 = time.perf_counter()
        model.learn(1024, reset_num_timesteps=False)
        r_ppo = 1024 / (time.perf_counter() - t0)
        train_env.close()
        print(f"| {threads} | {r_single:.0f} | {r_vec:.0f} | {r_ppo:.0f} |", flush=True)


if __name__ == "__main__":
    main()
