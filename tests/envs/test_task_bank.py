"""The task bank: each env's next tasks drawn once and kept on the device.

Its contract: the first ``B`` episodes of each env are exactly those it plays without a bank
(same observations, same rewards), later ones repeat the bank in order, and no task is
sampled inside the step loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from unigen_sb3.configs.loader import load_config
from unigen_sb3.configs.schema import ConfigError
from unigen_sb3.envs.bank import TargetFeatureCache, TaskBank, task_bytes
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


# ---------------------------------------------------------------- kept target features
def _play(
    make: Any, steps: int, n: int, seed: int = 0
) -> tuple[list[np.ndarray], list[list[dict[str, Any]]]]:
    """Rewards and infos of ``steps`` seeded random vector steps of ``make()``."""
    venv = make()
    venv.reset()
    rng = np.random.default_rng(seed)
    rewards, infos = [], []
    for _ in range(steps):
        _, rew, _, info = venv.step(_actions(rng, n))
        rewards.append(rew)
        infos.append(info)
    return rewards, infos


def _same_infos(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.get("state_components"), y.get("state_components"))
        assert x["sub_metrics"].keys() == y["sub_metrics"].keys()
        for key, value in x["sub_metrics"].items():
            np.testing.assert_array_equal(value, y["sub_metrics"][key], err_msg=key)


def _banked3(features: bool, *, horizon: int, seed: int, **kwargs: Any) -> UniGenVecEnv:
    """Three envs with a bank of two tasks each, keeping their targets' features or not."""
    return UniGenVecEnv(
        3,
        size=SIZE,
        horizon=horizon,
        seed=seed,
        device="cpu",
        task_bank_size=2,
        task_bank_features=features,
        **kwargs,
    )


# Seed 0's banks hold every kind of start: blank (generation), a shapes scene and a photo.
_ALL_STARTS_SEED = 0


def _sources(venv: UniGenVecEnv) -> set[tuple[str, str]]:
    assert venv.bank is not None
    return {(t.kind, t.source) for t in venv.bank.tasks}


@pytest.mark.parametrize("dense", [False, True])
def test_kept_target_features_change_no_reward_or_info(dense: bool) -> None:
    kept_env: list[UniGenVecEnv] = []

    def make(features: bool) -> UniGenVecEnv:
        venv = _banked3(features, horizon=3, seed=_ALL_STARTS_SEED, dense_components=dense)
        if features:
            kept_env.append(venv)
        return venv

    steps = 14  # at most 3 steps per episode: every env replays its 2 tasks at least twice
    plain_rewards, plain_infos = _play(lambda: make(False), steps, 3)
    kept_rewards, kept_infos = _play(lambda: make(True), steps, 3)
    for r_plain, r_kept, i_plain, i_kept in zip(
        plain_rewards, kept_rewards, plain_infos, kept_infos, strict=True
    ):
        np.testing.assert_array_equal(r_plain, r_kept)
        _same_infos(i_plain, i_kept)
    venv = kept_env[0]
    assert _sources(venv) == {("generate", "shapes"), ("edit", "shapes"), ("edit", "photos")}
    cache = venv.core.target_cache
    assert venv.bank is not None and venv.bank.target_features is cache and cache is not None
    assert cache.filled.all()
    # Starts kept: the shapes scenes' only (blank canvases and photos have their own caches).
    scenes = [r for r, t in enumerate(venv.bank.tasks) if t.kind == "edit" and t.source == "shapes"]
    assert sorted(cache.starts) == scenes
    # Lazy scoring keeps each task's start distance and target realism from its first episode.
    assert cache.scored.all() != dense
    assert make(False).core.target_cache is None


def test_single_env_with_kept_target_features_pays_the_same_rewards() -> None:
    def episodes(features: bool) -> list[np.ndarray]:
        env = UniGenEnv(
            size=SIZE, horizon=2, device="cpu", task_bank_size=2, task_bank_features=features
        )
        rng = np.random.default_rng(3)
        paid = []
        for episode in range(6):
            env.reset(seed=11 if episode == 0 else None)
            done = False
            while not done:
                action = {
                    "op": int(rng.integers(NUM_OPS)),
                    "params": rng.uniform(-1, 1, NUM_PARAMS).astype(np.float32),
                }
                _, reward, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
            paid.append(np.asarray(reward))
        if features:
            assert env.bank is not None and env.bank.target_features is not None
            assert env.bank.target_features.filled.all()
        return paid

    for plain, kept in zip(episodes(False), episodes(True), strict=True):
        np.testing.assert_array_equal(plain, kept)


def test_replayed_tasks_run_only_final_canvases_through_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After every env played its bank once, a forward holds final canvases only: never a
    banked target nor a banked shapes-scene start, and the start distances and target
    realism are not computed again. Without kept features the targets and starts keep
    coming back and every episode end prepares its scores (the control that shows each
    check can fail)."""

    def replay(features: bool) -> tuple[int, int, int]:
        venv = _banked3(features, horizon=2, seed=_ALL_STARTS_SEED)
        venv.reset()
        assert ("edit", "shapes") in _sources(venv) and venv.bank is not None
        rng = np.random.default_rng(4)
        for _ in range(2 * 2):  # horizon x bank size: every task played once
            venv.step(_actions(rng, 3))
        network, rewards = venv.rewards.perceptual, venv.rewards
        seen: list[torch.Tensor] = []
        prepared: list[int] = []
        features_of, prepare = network.features, rewards.prepare_perceptual

        def spy(images: torch.Tensor) -> list[torch.Tensor]:
            seen.append(images.clone())
            return features_of(images)

        def prepare_spy(batch: Any) -> Any:
            prepared.append(batch.target.shape[0])
            return prepare(batch)

        monkeypatch.setattr(network, "features", spy)
        monkeypatch.setattr(rewards, "prepare_perceptual", prepare_spy)
        ended = 0
        for _ in range(8):
            ended += int(venv.step(_actions(rng, 3))[2].sum())
        monkeypatch.undo()
        assert ended >= 6

        def found(images: torch.Tensor) -> int:
            flat = images.flatten(1)
            return sum(
                int((batch.flatten(1)[:, None] == flat[None]).all(dim=2).any(dim=1).sum())
                for batch in seen
            )

        scenes = [t.start for t in venv.bank.tasks if t.kind == "edit" and t.source == "shapes"]
        return found(venv.bank.images["target"]), found(torch.stack(scenes)), len(prepared)

    targets, starts, prepared = replay(False)
    assert targets > 0 and starts > 0 and prepared > 0
    assert replay(True) == (0, 0, 0)


def test_kept_target_features_memory_is_as_documented() -> None:
    env = UniGenEnv(
        size=64, horizon=1, device="cpu", task_bank_size=3, task_bank_features=True, seed=2
    )
    env.reset()
    cache = env.bank.target_features if env.bank is not None else None
    assert cache is not None and cache.nbytes == 0  # allocated at the first episode's end
    task = env.current_task
    assert task is not None and (task.kind, task.source) == ("edit", "shapes")
    env.step({"op": 0, "params": np.zeros(NUM_PARAMS, np.float32)})
    assert cache.layers is not None
    targets = sum(t.numel() * t.element_size() for t in cache.layers)
    assert round(targets / 3 / 1024) == 618, targets  # per task: the figure the docs give
    assert cache.filled.tolist() == [True, False, False]
    assert cache.scored.tolist() == [True, False, False]
    # The first task starts from a shapes scene: its start takes one image's features more.
    assert list(cache.starts) == [0]
    starts = sum(t.numel() * t.element_size() for t in cache.starts[0])
    assert starts * 3 == targets
    scores = 3 * (4 + 8)  # a float32 start distance and a float64 target realism per row
    assert cache.nbytes == targets + starts + scores


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_bad_task_bank_features_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="task_bank_features"):
        UniGenVecEnv(1, size=SIZE, device="cpu", task_bank_size=2, task_bank_features=bad)
    with pytest.raises(ValueError, match="task_bank_features"):
        UniGenSpec(size=SIZE, device="cpu", task_bank_size=2, task_bank_features=bad)


def test_kept_target_features_need_a_bank() -> None:
    with pytest.raises(ValueError, match=r"task_bank_features=True .* needs a bank"):
        UniGenVecEnv(1, size=SIZE, device="cpu", task_bank_features=True)
    with pytest.raises(ValueError, match=r"task_bank_features=True .* needs a bank"):
        UniGenEnv(size=SIZE, device="cpu", task_bank_features=True)
    with pytest.raises(ValueError, match="needs a bank"):
        UniGenSpec(size=SIZE, device="cpu", task_bank_features=True)
    with pytest.raises(ConfigError, match="needs a bank") as err:
        load_config(None, ["env.task_bank_features=true"])
    assert err.value.path == "env.task_bank_features"
    config = load_config(None, ["env.task_bank_features=true", "env.task_bank_size=2"])
    assert UniGenSpec.from_config(config).env_kwargs()["task_bank_features"] is True


def test_feature_cache_names_the_rows_it_does_not_hold() -> None:
    cache = TargetFeatureCache(4)
    with pytest.raises(KeyError, match=r"bank rows \[0, 2\] hold no target features yet"):
        cache.lookup([0, 2])
    with pytest.raises(KeyError, match=r"bank rows \[1\] hold no start distance yet"):
        cache.scores([1])
    cache.store([2], [torch.ones(1, 3, 2, 2)])
    cache.store_scores([2], torch.tensor([0.5]), None)
    with pytest.raises(KeyError, match=r"bank rows \[0\] hold no target features yet"):
        cache.lookup([2, 0])
    with pytest.raises(KeyError, match=r"bank rows \[3\] hold no start distance yet"):
        cache.scores([3, 2])
    assert torch.equal(cache.lookup([2])[0], torch.ones(1, 3, 2, 2))
    distance, m2 = cache.scores([2])
    assert distance.tolist() == [0.5] and m2 is None
