"""The task bank: each env's next tasks drawn once and kept on the device.

Its contract: the first ``B`` episodes of each env are exactly those it plays without a bank
(same observations, same rewards), later ones repeat the bank in order, and no task is
sampled inside the step loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from unigen_sb3.envs.bank import TaskBank, task_bytes
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS
from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.envs.vec_env import UniGenVecEnv
from unigen_sb3.spec import UniGenSpec

SIZE = 36
BANK = 3


def _actions(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "op": rng.integers(NUM_OPS, size=n),
        "params": rng.uniform(-1, 1, (n, NUM_PARAMS)).astype(np.float32),
    }


def test_first_episodes_are_those_without_a_bank_then_they_repeat() -> None:
    banked = UniGenVecEnv(3, size=SIZE, horizon=3, seed=4, device="cpu", task_bank_size=BANK)
    plain = UniGenVecEnv(3, size=SIZE, horizon=3, seed=4, device="cpu")
    obs_b, obs_p = banked.reset(), plain.reset()
    assert banked.bank is not None and plain.bank is None
    rng = np.random.default_rng(0)
    prompts: list[list[str]] = [[t.prompt.id] for t in banked.core.tasks if t is not None]
    compared = 0
    while banked.bank.episodes.max() <= BANK:  # every env still in its first BANK episodes
        for key in obs_b:
            np.testing.assert_array_equal(obs_b[key], obs_p[key], err_msg=key)
        actions = _actions(rng, 3)
        obs_b, rew_b, dones, _ = banked.step(actions)
        obs_p, rew_p, _, _ = plain.step(actions)
        np.testing.assert_array_equal(rew_b, rew_p)
        for i in np.flatnonzero(dones):
            task = banked.core.tasks[i]
            assert task is not None
            prompts[i].append(task.prompt.id)
        compared += 1
    assert compared >= 3
    for _ in range(20):  # play on: episode e + BANK repeats episode e
        _, _, dones, _ = banked.step(_actions(rng, 3))
        for i in np.flatnonzero(dones):
            task = banked.core.tasks[i]
            assert task is not None
            prompts[i].append(task.prompt.id)
    for sequence in prompts:
        assert len(sequence) > BANK
        assert sequence[BANK:] == sequence[: len(sequence) - BANK]


def test_no_task_is_sampled_inside_the_step_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    venv = UniGenVecEnv(2, size=SIZE, horizon=2, seed=0, device="cpu", task_bank_size=2)
    venv.reset()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a task was sampled inside the step loop")

    monkeypatch.setattr(venv.sampler, "sample", refuse)
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(8):
        ended += int(venv.step(_actions(rng, 2))[2].sum())
    assert ended >= 4


def test_single_env_bank_plays_the_batched_envs_episodes() -> None:
    venv = UniGenVecEnv(2, "edit", size=SIZE, horizon=2, seed=7, device="cpu", task_bank_size=2)
    venv.reset()
    assert venv.bank is not None
    for i in range(2):
        env = UniGenEnv("edit", size=SIZE, horizon=2, device="cpu", task_bank_size=2)
        seen = []
        for episode in range(4):
            env.reset(seed=7 + i if episode == 0 else None)
            task = env.current_task
            assert task is not None
            seen.append(task.prompt.id)
        banked = [venv.bank.tasks[i * 2 + e % 2].prompt.id for e in range(4)]
        assert seen == banked


def test_bank_memory_is_as_documented() -> None:
    venv = UniGenVecEnv(2, size=SIZE, seed=0, device="cpu", task_bank_size=5)
    venv.reset()
    assert isinstance(venv.bank, TaskBank)
    assert venv.bank.nbytes == 2 * 5 * task_bytes(SIZE)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", 10**9])
def test_bad_bank_sizes_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="task_bank_size"):
        UniGenVecEnv(1, size=SIZE, device="cpu", task_bank_size=bad)
    with pytest.raises(ValueError, match="task_bank_size"):
        UniGenSpec(size=SIZE, device="cpu", task_bank_size=bad)
