"""Seeded fuzz of the batched raw env: hostile actions never corrupt its state.

Usage: ``python benchmarks/fuzz_env.py [--steps 100000] [--n-envs 64] [--size 36]
[--seed 0] [--output docs/benchmarks/fuzz_env.md]``.

Each batch of actions is drawn from a mix: valid actions (params in [-1, 1]), finite params
far outside (up to +-1e300, which must be clipped), and malformed ones that must be refused
with a ``ValueError`` (NaN/inf params, bool or complex params, bool / float / out-of-range
op ids, wrong shapes, missing keys). Checked after every step: observations and rewards are
finite and inside their spaces; after every refused action: the env's state (canvases,
step counters, observation) is unchanged. ``--steps`` counts env steps (batch steps times
``n_envs``) that were taken; refused actions do not count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS
from unigen_sb3.envs.vec_env import UniGenVecEnv


def _valid(rng: np.random.Generator, n: int) -> dict[str, Any]:
    return {
        "op": rng.integers(0, NUM_OPS, n),
        "params": rng.uniform(-1, 1, (n, NUM_PARAMS)).astype(np.float32),
    }


def _large(rng: np.random.Generator, n: int) -> dict[str, Any]:
    exps = rng.uniform(0, 300, (n, NUM_PARAMS))
    return {
        "op": rng.integers(0, NUM_OPS, n),
        "params": rng.choice([-1.0, 1.0], (n, NUM_PARAMS)) * 10.0**exps,
    }


def _malformed(rng: np.random.Generator, n: int) -> Any:
    good = _valid(rng, n)
    kind = int(rng.integers(0, 10))
    if kind == 0:
        good["params"][rng.integers(0, n), rng.integers(0, NUM_PARAMS)] = np.nan
    elif kind == 1:
        good["params"] = good["params"].astype(np.float64)
        good["params"][rng.integers(0, n), 0] = np.inf
    elif kind == 2:
        good["params"] = good["params"] > 0
    elif kind == 3:
        good["params"] = good["params"] + 1j
    elif kind == 4:
        good["op"] = [True] + [int(o) for o in good["op"][1:]]
    elif kind == 5:
        good["op"] = good["op"] + 0.5
    elif kind == 6:
        good["op"] = good["op"] + NUM_OPS
    elif kind == 7:
        good["params"] = good["params"][:, :-1]
    elif kind == 8:
        del good["op"]
    else:
        good["op"] = -good["op"] - 1
    return good


def _state(env: UniGenVecEnv) -> tuple[torch.Tensor, np.ndarray]:
    return env.core.canvas.clone(), env.core.steps.copy()


def fuzz(steps: int, n_envs: int, size: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    env = UniGenVecEnv(n_envs, "unified", size=size, horizon=8, device="cpu", seed=seed)
    obs_space = env.observation_space
    obs = env.reset()
    counts: dict[str, Any] = {
        "steps": 0,
        "valid": 0,
        "large": 0,
        "refused": 0,
        "accepted_malformed": 0,
        "nonfinite": 0,
        "outside_space": 0,
        "state_changed_on_refusal": 0,
    }
    t0 = time.perf_counter()
    while counts["steps"] < steps:
        draw = rng.random()
        if draw < 0.15:
            before = _state(env)
            try:
                env.step_async(_malformed(rng, n_envs))
            except ValueError:
                counts["refused"] += 1
                after = _state(env)
                if not (torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1])):
                    counts["state_changed_on_refusal"] += 1
                continue
            counts["accepted_malformed"] += 1
            obs, reward, _, _ = env.step_wait()
        else:
            kind = "large" if draw < 0.35 else "valid"
            action = _large(rng, n_envs) if kind == "large" else _valid(rng, n_envs)
            env.step_async(action)
            obs, reward, _, _ = env.step_wait()
            counts[kind] += 1
        counts["steps"] += n_envs
        flat = [np.asarray(v) for v in obs.values()] + [np.asarray(reward)]
        if not all(np.isfinite(a.astype(np.float64)).all() for a in flat):
            counts["nonfinite"] += 1
        for i in range(n_envs):
            one = {k: v[i] for k, v in obs.items()}
            if not obs_space.contains(one):
                counts["outside_space"] += 1
        rew = np.asarray(reward, dtype=np.float64).reshape(n_envs, -1)
        low, high = env.reward_space.low, env.reward_space.high
        if not np.all((rew >= low) & (rew <= high)):
            counts["outside_space"] += 1
    counts["seconds"] = round(time.perf_counter() - t0, 1)
    env.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--n-envs", type=int, default=64)
    parser.add_argument("--size", type=int, default=36)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    counts = fuzz(args.steps, args.n_envs, args.size, args.seed)
    lines = [
        "# Env fuzz (`benchmarks/fuzz_env.py`)",
        "",
        f"`python benchmarks/fuzz_env.py --steps {args.steps} --n-envs {args.n_envs} "
        f"--size {args.size} --seed {args.seed}` (batched raw env, unified task, CPU):",
        "",
        "| count | value |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in counts.items()],
        "",
        "`valid` / `large`: batch steps with params in [-1, 1] / finite params up to 1e300 "
        "(clipped); `refused`: malformed batches refused with a ValueError; the last four "
        "counts must be 0.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
