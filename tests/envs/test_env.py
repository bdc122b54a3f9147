"""The UniGen env: spaces, reward schedule, checks, determinism, registration, checkers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from unigen_sb3 import ENV_IDS, UniGenEnv, make_unigen_env
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_ATTRIBUTE, OP_FILL, OP_STOP
from unigen_sb3.envs.tasks import ATTRIBUTE_NAMES

TASKS = ("generate", "edit", "unified")


def _act(op: int, params: np.ndarray | None = None) -> dict:
    p = np.zeros(NUM_PARAMS, np.float32) if params is None else params
    return {"op": op, "params": np.asarray(p, np.float32)}


@pytest.fixture
def edit_env() -> UniGenEnv:
    return UniGenEnv(task="edit", seed=3, render_mode="rgb_array")


@pytest.mark.parametrize("task", TASKS)
def test_sb3_check_env_on_the_stack(task: str) -> None:
    env = make_unigen_env(task=task, seed=0)
    sb3_check_env(env, warn=True)
    assert env.observation_space.dtype == np.uint8
    assert env.observation_space.shape[1:] == (64, 64)


def test_gymnasium_checker_only_warns_about_the_vector_reward() -> None:
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(UniGenEnv(task="unified", seed=0), skip_render_check=True)
    messages = [str(w.message) for w in caught]
    assert messages, "the vector reward should raise the documented warning"
    for msg in messages:
        assert "reward returned by `step()` must be a float" in msg


def test_spaces_and_observation_content(edit_env: UniGenEnv) -> None:
    obs, info = edit_env.reset()
    assert edit_env.observation_space.contains(obs)
    assert obs["attributes"].shape == (len(ATTRIBUTE_NAMES),)
    assert set(np.unique(obs["mask"])) <= {0, 255}
    assert info["task"] == "edit" and isinstance(info["prompt"], str) and info["prompt"]
    # The target image is privileged: not in the default observation.
    assert "target" not in obs and "target" not in edit_env.observation_space.spaces
    assert edit_env.reward_space.shape == (3,)


def test_observed_reference_mode_shows_the_target() -> None:
    env = UniGenEnv(task="edit", seed=0, size=48, reference="observed")
    obs, _ = env.reset()
    assert env.observation_space.contains(obs)
    # Editing target: the start image with the edit inside the mask, unchanged outside it.
    outside = obs["mask"][0] == 0
    assert np.array_equal(obs["target"][:, outside], obs["canvas"][:, outside])
    assert not np.array_equal(obs["target"], obs["canvas"])
    with pytest.raises(ValueError, match="reference"):
        UniGenEnv(reference="shown")


def test_generation_mask_is_whole_canvas_and_attribute_op_masked() -> None:
    env = UniGenEnv(task="generate", seed=0)
    obs, info = env.reset()
    assert (obs["mask"] == 255).all()
    assert (obs["canvas"] == 255).all()  # blank white start
    assert not env.action_masks()[OP_ATTRIBUTE] and env.action_masks().sum() == NUM_OPS - 1
    assert np.array_equal(info["op_mask"], env.action_masks())


def test_reward_paid_at_the_end_only(edit_env: UniGenEnv) -> None:
    edit_env.reset()
    temporal = []
    for _ in range(3):
        _, reward, terminated, truncated, info = edit_env.step(_act(OP_FILL))
        assert not (terminated or truncated)
        assert info["reward_is_final"] is False
        np.testing.assert_array_equal(reward, np.zeros(3, np.float32))
        temporal.append(info["sub_metrics"]["consistency/temporal"])
    _, reward, terminated, truncated, info = edit_env.step(_act(OP_STOP))
    temporal.append(info["sub_metrics"]["consistency/temporal"])
    assert terminated and not truncated and info["reward_is_final"] is True
    assert reward.dtype == np.float32 and edit_env.reward_space.contains(reward)
    np.testing.assert_allclose(reward[:2], info["state_components"][:2])
    # Consistency: the final style progress times the episode's most jarring step.
    style = info["sub_metrics"]["consistency/style"]
    np.testing.assert_allclose(reward[2], style * min(temporal), rtol=1e-5)


def test_horizon_truncates_and_step_after_end_raises() -> None:
    env = UniGenEnv(task="generate", horizon=3, seed=0)
    env.reset()
    flags = [env.step(_act(2))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_act(2))


def test_render_is_canvas_target_mask(edit_env: UniGenEnv) -> None:
    obs, _ = edit_env.reset()
    frame = edit_env.render()
    assert frame is not None and frame.shape == (64, 192, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[:, :64], obs["canvas"].transpose(1, 2, 0))
    target = edit_env.unwrapped.core.target[0]  # a picture for people shows the target
    expected = (target * 255).round().byte().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(frame[:, 64:128], expected)
    np.testing.assert_array_equal(frame[:, 128:, 0], obs["mask"][0])


def _rollout(env: UniGenEnv, seed: int, n_steps: int) -> list[tuple]:
    rng = np.random.default_rng(123)
    obs, _ = env.reset(seed=seed)
    out: list[tuple] = [tuple(v.copy() for v in obs.values())]
    for _ in range(n_steps):
        action = _act(int(rng.integers(NUM_OPS)), rng.uniform(-1, 1, NUM_PARAMS))
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append((*(v.copy() for v in obs.values()), reward.copy()))
        if terminated or truncated:
            obs, _ = env.reset()
    return out


def test_same_seed_same_observations_and_rewards() -> None:
    a = _rollout(UniGenEnv(task="unified"), seed=11, n_steps=30)
    b = _rollout(UniGenEnv(task="unified"), seed=11, n_steps=30)
    c = _rollout(UniGenEnv(task="unified"), seed=12, n_steps=30)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


def test_constructor_seed_makes_unseeded_reset_reproducible() -> None:
    first = [UniGenEnv(seed=5).reset()[1]["prompt_id"] for _ in range(2)]
    assert first[0] == first[1]


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"op": 1, "params": np.full(NUM_PARAMS, np.nan, np.float32)}, "params"),
        ({"op": 1, "params": np.array([np.inf] + [0.0] * (NUM_PARAMS - 1))}, "params"),
        ({"op": 1, "params": np.zeros(NUM_PARAMS + 1)}, "params"),
        ({"op": float("nan"), "params": np.zeros(NUM_PARAMS)}, "op"),
        ({"op": NUM_OPS, "params": np.zeros(NUM_PARAMS)}, "op"),
        ({"op": np.array([1, 2]), "params": np.zeros(NUM_PARAMS)}, "op"),
        ({"params": np.zeros(NUM_PARAMS)}, "op"),
    ],
)
def test_bad_actions_raise_and_leave_state_unchanged(
    edit_env: UniGenEnv, action: dict, field: str
) -> None:
    edit_env.reset()
    edit_env.step(_act(OP_FILL, np.full(NUM_PARAMS, 0.3)))
    canvas = edit_env.core.canvas.clone()
    steps = edit_env.core.steps.copy()
    recent = edit_env.core.recent.copy()
    with pytest.raises(ValueError, match=field):
        edit_env.step(action)
    assert torch.equal(edit_env.core.canvas, canvas)
    np.testing.assert_array_equal(edit_env.core.steps, steps)
    np.testing.assert_array_equal(edit_env.core.recent, recent)


def test_out_of_range_params_are_clipped() -> None:
    big = np.array([3.0, -7.0, 9.0, 2.0, -2.0, 5.0, 4.0, -3.0], np.float32)
    outs = []
    for params in (big, np.clip(big, -1, 1)):
        env = UniGenEnv(task="edit", seed=8)
        env.reset()
        obs, *_ = env.step(_act(OP_FILL, params))
        outs.append(obs["canvas"])
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.slow
def test_fuzz_2000_random_steps_never_nan() -> None:
    env = UniGenEnv(task="unified", size=36, horizon=16, seed=0)
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(2000):
        params = rng.uniform(-3, 3, NUM_PARAMS).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(
            _act(int(rng.integers(NUM_OPS)), params)
        )
        assert np.all(np.isfinite(reward)) and env.reward_space.contains(reward)
        assert np.all(np.isfinite(obs["attributes"])) and np.all(np.isfinite(obs["recent"]))
        assert env.observation_space.contains(obs)
        assert np.all(np.isfinite(info.get("state_components", 0.0)))
        assert ("state_components" in info) == (terminated or truncated)  # lazy scoring
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_registered_ids(env_id: str) -> None:
    env = gym.make(f"unigen_sb3:{env_id}")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    expected = ENV_IDS[env_id]
    if expected != "unified":
        assert info["task"] == expected
    _, reward, *_ = env.step(env.action_space.sample())
    assert isinstance(reward, float)


def test_make_unigen_env_defaults_and_bad_arguments() -> None:
    env = make_unigen_env()
    assert isinstance(env.action_space, gym.spaces.Box)
    assert env.action_space.shape == (NUM_OPS + NUM_PARAMS,)
    with pytest.raises(ValueError, match="action='tuple'"):
        make_unigen_env(action="tuple")
    with pytest.raises(ValueError, match="obs='pixels'"):
        make_unigen_env(obs="pixels")
    with pytest.raises(ValueError, match="task='paint'"):
        make_unigen_env(task="paint")
    with pytest.raises(ValueError, match="size=16"):
        UniGenEnv(size=16)
    for bad in (True, 0, 2.0):
        with pytest.raises(ValueError, match=f"horizon={bad!r} must be an int >= 1"):
            UniGenEnv(horizon=bad)
    # numpy integers (e.g. from a config array) are ints; they are stored as Python ints.
    sized = UniGenEnv(size=np.int64(36), horizon=np.int32(3))
    assert (sized.size, sized.horizon) == (36, 3) and type(sized.size) is int
    assert sized.observation_space["canvas"].shape == (3, 36, 36)
    with pytest.raises(ValueError, match=r"sum to 2\.7"):
        make_unigen_env(w_quality=0.9, w_edit=0.9, w_consistency=0.9)


def test_dict_observation_mode() -> None:
    env = make_unigen_env(obs="dict", seed=0)
    assert isinstance(env.observation_space, gym.spaces.Dict)
    obs, _ = env.reset()
    assert env.observation_space.contains(obs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_request_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        UniGenEnv(device="cuda")
