"""Tests for UnifiedRewardWrapper and VecUnifiedReward on a toy multi-objective env."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from unigen_sb3.rewards.normalizers import COMPONENT_NAMES
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.wrappers.reward import UnifiedRewardWrapper, VecUnifiedReward

INFO_KEYS = {
    "reward_components",
    "reward_raw",
    "reward_weights",
    "reward_contrib",
    "reward_total",
}


class ToyMOEnv(gym.Env):
    """A tiny MO env: the state is 3 components in [0, 1] that actions nudge.

    :param episode_len: steps per episode.
    :param end: ``"terminate"`` or ``"truncate"`` at the end of an episode.
    :param final_only: UniGen-style: pay the state's components only on the
        last step, with ``reward_is_final`` and ``state_components`` in info;
        otherwise a generic MO env paying every step, with no extra info keys.
    :param bad_reward: ``None``, ``"nan"`` or ``"long"`` to emit a broken reward.
    """

    def __init__(
        self,
        episode_len: int = 4,
        end: str = "terminate",
        final_only: bool = True,
        bad_reward: str | None = None,
        reward_space: Any = "default",
    ) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        if reward_space == "default":
            self.reward_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        elif reward_space is not None:
            self.reward_space = reward_space
        self.episode_len = episode_len
        self.end = end
        self.final_only = final_only
        self.bad_reward = bad_reward
        self.state = np.zeros(3, dtype=np.float32)
        self.t = 0

    def _info(self, is_final: bool) -> dict[str, Any]:
        if not self.final_only:
            return {}
        return {"reward_is_final": is_final, "state_components": self.state.copy()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.state = self.np_random.uniform(0.1, 0.9, size=3).astype(np.float32)
        self.t = 0
        return self.state.copy(), self._info(False)

    def step(self, action: Any) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        self.t += 1
        # Action 0 lowers, 2 raises every component; noise makes components differ.
        delta = 0.1 * (int(action) - 1) + self.np_random.normal(scale=0.05, size=3)
        self.state = np.clip(self.state + delta, 0.0, 1.0).astype(np.float32)
        last = self.t >= self.episode_len
        terminated = last and self.end == "terminate"
        truncated = last and self.end == "truncate"
        pays = last or not self.final_only
        reward = self.state.copy() if pays else np.zeros(3, dtype=np.float32)
        if self.bad_reward == "nan":
            reward[1] = np.nan
        elif self.bad_reward == "long":
            reward = np.zeros(4, dtype=np.float32)
        return self.state.copy(), reward, terminated, truncated, self._info(last)


class MODummyVecEnv(DummyVecEnv):
    """DummyVecEnv whose reward buffer holds a vector per env (shape (n_envs, 3))."""

    def __init__(self, env_fns: list) -> None:
        super().__init__(env_fns)
        self.buf_rews = np.zeros((self.num_envs, 3), dtype=np.float32)


def _run(env: gym.Env, actions: list[int], seed: int = 0) -> list[tuple]:
    out = []
    env.reset(seed=seed)
    for a in actions:
        _, r, term, trunc, info = env.step(a)
        out.append((r, term, trunc, info))
        if term or trunc:
            env.reset()
    return out


# ---------------------------------------------------------------- gym wrapper


def test_passes_sb3_check_env() -> None:
    # check_env asserts a Python float reward (np.float32 would fail it).
    check_env(UnifiedRewardWrapper(ToyMOEnv()), warn=False)


def test_reward_is_python_float_in_unit_interval_with_info() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(episode_len=3), 0.5, 0.3, 0.2)
    steps = _run(env, [2, 0, 1, 2, 2, 2, 0], seed=1)
    finals = 0
    for r, term, _, info in steps:
        assert type(r) is float
        assert 0.0 <= r <= 1.0
        assert INFO_KEYS <= set(info)
        assert "reward_shaping" not in info
        assert set(info["reward_components"]) == set(COMPONENT_NAMES)
        assert info["reward_weights"] == {"quality": 0.5, "edit": 0.3, "consistency": 0.2}
        assert r == info["reward_total"]
        if term:
            finals += 1
            raw = np.array([info["reward_raw"][n] for n in COMPONENT_NAMES])
            np.testing.assert_allclose(raw, info["state_components"], atol=1e-7)
            # reward_space is Box(0, 1): normalized == raw, total == weighted sum.
            assert r == pytest.approx(float(raw @ [0.5, 0.3, 0.2]), abs=1e-6)
            for n in COMPONENT_NAMES:
                contrib = info["reward_contrib"][n]
                expected = info["reward_weights"][n] * info["reward_components"][n]
                assert contrib == pytest.approx(expected)
            assert r > 0.0
    assert finals == 2


def test_non_final_steps_pay_zero_and_skip_running_stats() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(episode_len=3), normalization="running")
    env.reset(seed=0)
    for _ in range(2):
        _, r, term, _, info = env.step(1)
        assert not term and r == 0.0
        assert info["reward_total"] == 0.0
        assert set(info["reward_components"].values()) == {0.0}
        assert set(info["reward_contrib"].values()) == {0.0}
        assert info["reward_raw"] == {n: 0.0 for n in COMPONENT_NAMES}
    assert env.unifier.normalizer.state_dict()["count"] == 0
    _, r, term, _, info = env.step(1)
    assert term and env.unifier.normalizer.state_dict()["count"] == 1
    assert 0.0 < r < 1.0


def test_generic_mo_env_pays_every_step() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(final_only=False), 1.0, 0.0, 0.0)
    steps = _run(env, [2, 2, 2], seed=3)
    for r, _, _, info in steps:
        assert r == pytest.approx(info["reward_raw"]["quality"], abs=1e-7)
        assert r > 0.0


def test_weights_validation_and_set_weights() -> None:
    with pytest.raises(ValueError, match=r"sum to 2\.7"):
        UnifiedRewardWrapper(ToyMOEnv(), 0.9, 0.9, 0.9)
    env = UnifiedRewardWrapper(ToyMOEnv(episode_len=1), 1.0, 0.0, 0.0)
    env.reset(seed=0)
    _, r1, _, _, info1 = env.step(1)
    env.set_weights(w_quality=0.0, w_consistency=1.0)
    assert env.unifier.weights == {"quality": 0.0, "edit": 0.0, "consistency": 1.0}
    with pytest.raises(ValueError, match=r"sum to 1\.5"):
        env.set_weights(w_edit=0.5)
    assert env.unifier.weights["edit"] == 0.0  # unchanged after the failed call
    env.reset(seed=0)
    _, r2, _, _, info2 = env.step(1)
    assert r1 == pytest.approx(info1["reward_raw"]["quality"], abs=1e-7)
    assert r2 == pytest.approx(info2["reward_raw"]["consistency"], abs=1e-7)
    assert info2["reward_weights"]["consistency"] == 1.0


def test_normalize_weights_in_wrapper() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(), 2.0, 1.0, 1.0, normalize_weights=True)
    assert env.unifier.weights == pytest.approx({"quality": 0.5, "edit": 0.25, "consistency": 0.25})


def test_ablation_zero_weight_contributes_nothing() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(episode_len=1), 0.0, 0.5, 0.5)
    assert env.unifier.ablated == ("quality",)
    env.reset(seed=5)
    _, r, _, _, info = env.step(2)
    assert info["reward_contrib"]["quality"] == 0.0
    assert info["reward_components"]["quality"] > 0.0
    assert r == pytest.approx(
        0.5 * info["reward_raw"]["edit"] + 0.5 * info["reward_raw"]["consistency"], abs=1e-7
    )


@pytest.mark.parametrize(("bad", "match"), [("nan", "edit=nan"), ("long", "got 4")])
def test_bad_raw_reward_raises(bad: str, match: str) -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(bad_reward=bad))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(1)


@pytest.mark.parametrize(
    ("reward_space", "error", "match"),
    [
        (None, TypeError, "has no reward_space"),
        (spaces.Discrete(3), TypeError, "must be a gymnasium Box"),
        (spaces.Box(0, 1, shape=(2,)), ValueError, r"shape \(3,\).*got \(2,\)"),
    ],
)
def test_reward_space_validated(reward_space: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        UnifiedRewardWrapper(ToyMOEnv(reward_space=reward_space))


def test_bounds_come_from_reward_space() -> None:
    space = spaces.Box(np.array([0, 0, 0]), np.array([2, 1, 1]), dtype=np.float32)
    env = UnifiedRewardWrapper(ToyMOEnv(episode_len=1, reward_space=space), 1.0, 0.0, 0.0)
    env.reset(seed=0)
    _, r, _, _, info = env.step(1)
    assert r == pytest.approx(info["reward_raw"]["quality"] / 2.0, abs=1e-7)
    # Infinite bounds cannot be mapped affinely; the running normalizer handles them.
    unbounded = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
    with pytest.raises(ValueError, match="must be finite"):
        UnifiedRewardWrapper(ToyMOEnv(reward_space=unbounded))
    UnifiedRewardWrapper(ToyMOEnv(reward_space=unbounded), normalization="running")


def test_running_state_roundtrip_through_wrapper() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(episode_len=2), normalization="running")
    _run(env, [2, 0] * 10, seed=7)
    assert env.unifier.normalizer.state_dict()["count"] == 10
    blob = pickle.dumps(env.unifier.state_dict())
    fresh = UnifiedRewardWrapper(ToyMOEnv(episode_len=2), normalization="running")
    fresh.unifier.load_state_dict(pickle.loads(blob))
    # Same subsequent trajectory -> same rewards (statistics keep evolving identically).
    a = _run(env, [1, 2, 0, 1, 2, 2], seed=11)
    b = _run(fresh, [1, 2, 0, 1, 2, 2], seed=11)
    assert [x[0] for x in a] == [x[0] for x in b]
    assert any(x[0] > 0 for x in a)


def test_recorded_constructor_args() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(), 0.2, 0.3, 0.5, normalization="running")
    assert env._saved_kwargs["w_consistency"] == 0.5
    assert env._saved_kwargs["normalization"] == "running"


# ---------------------------------------------------------------- shaping


@pytest.mark.parametrize("potential", ["quality", "edit", "consistency"])
def test_shaping_telescopes_over_terminated_episode(potential: str) -> None:
    gamma = 0.9
    env = UnifiedRewardWrapper(ToyMOEnv(episode_len=5), shaping=PotentialShaping(gamma, potential))
    _, reset_info = env.reset(seed=2)
    phi0 = float(reset_info["state_components"][COMPONENT_NAMES.index(potential)])
    discounted_f, t, term = 0.0, 0, False
    while not term:
        _, r, term, _, info = env.step(t % 3)
        assert r == pytest.approx(info["reward_total"] + info["reward_shaping"])
        discounted_f += gamma**t * info["reward_shaping"]
        t += 1
    assert t == 5
    assert discounted_f == pytest.approx(-phi0, abs=1e-6)


def test_shaping_keeps_final_potential_on_truncation() -> None:
    gamma = 0.8
    env = UnifiedRewardWrapper(
        ToyMOEnv(episode_len=4, end="truncate"), shaping=PotentialShaping(gamma, "edit")
    )
    _, info = env.reset(seed=4)
    phi0 = float(info["state_components"][1])
    total, trunc, t = 0.0, False, 0
    while not trunc:
        _, _, _, trunc, info = env.step(2)
        total += gamma**t * info["reward_shaping"]
        t += 1
    phi_t = float(info["state_components"][1])
    assert total == pytest.approx(gamma**t * phi_t - phi0, abs=1e-6)
    assert phi_t > 0.0  # so the test tells truncation from termination


def test_shaping_generic_env_needs_callable_potential() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(final_only=False), shaping=PotentialShaping(0.9))
    with pytest.raises(ValueError, match="state_components"):
        env.reset(seed=0)
    # A callable potential works without state_components: here Phi = time step.
    counter = {"t": 0}

    def phi(comps: np.ndarray | None, info: dict) -> float:
        assert comps is None
        return float(counter["t"])

    env = UnifiedRewardWrapper(ToyMOEnv(final_only=False), shaping=PotentialShaping(0.5, phi))
    env.reset(seed=0)
    counter["t"] = 1
    _, _, _, _, info = env.step(1)
    assert info["reward_shaping"] == pytest.approx(0.5 * 1.0 - 0.0)


def test_step_before_reset_with_shaping_explains() -> None:
    env = UnifiedRewardWrapper(ToyMOEnv(), shaping=PotentialShaping(0.9))
    env.env.reset(seed=0)  # inner env usable, but the wrapper never saw the reset
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(1)


# ---------------------------------------------------------------- VecEnv wrapper


def _make(episode_len: int, end: str) -> Callable[[], gym.Env]:
    return lambda: ToyMOEnv(episode_len=episode_len, end=end)


@pytest.mark.parametrize("end", ["terminate", "truncate"])
@pytest.mark.parametrize(
    ("normalization", "lengths"),
    [("bounded", (3, 4)), ("running", (3,))],  # running statistics are shared across envs
)
def test_vec_wrapper_equals_gym_wrapper_step_by_step(
    end: str, normalization: str, lengths: tuple[int, ...]
) -> None:
    kwargs: dict[str, Any] = {
        "w_quality": 0.3,
        "w_edit": 0.5,
        "w_consistency": 0.2,
        "normalization": normalization,
        "shaping": PotentialShaping(0.9, "quality"),
    }
    seeds = [10 + i for i in range(len(lengths))]
    venv = MODummyVecEnv([_make(n, end) for n in lengths])
    venv.seed(seeds[0])  # DummyVecEnv seeds env i with seed + i
    vec = VecUnifiedReward(venv, **kwargs)
    gyms = [UnifiedRewardWrapper(ToyMOEnv(episode_len=n, end=end), **kwargs) for n in lengths]
    vec.reset()
    for env, seed in zip(gyms, seeds, strict=True):
        env.reset(seed=seed)
    rng = np.random.default_rng(0)
    n_done = 0
    for _ in range(16):
        actions = rng.integers(0, 3, size=len(lengths))
        _, rewards, dones, infos = vec.step(actions)
        assert rewards.dtype == np.float32 and rewards.shape == (len(lengths),)
        for i, env in enumerate(gyms):
            _, r, term, trunc, info = env.step(actions[i])
            assert dones[i] == (term or trunc)
            assert rewards[i] == pytest.approx(r, abs=1e-6)
            for key in (*INFO_KEYS, "reward_shaping"):
                assert infos[i][key] == pytest.approx(info[key], abs=1e-9), key
            if term or trunc:
                n_done += 1
                env.reset()
    assert n_done >= 5  # several auto-resets were compared


def test_vec_shaping_takes_potential_from_reset_infos() -> None:
    gamma = 0.9
    venv = MODummyVecEnv([_make(2, "terminate")])
    vec = VecUnifiedReward(venv, shaping=PotentialShaping(gamma, "consistency"))
    vec.reset()
    for _ in range(3):  # three episodes, auto-reset in between
        phi0 = float(venv.reset_infos[0]["state_components"][2])
        total = 0.0
        for t in range(2):
            _, _, dones, infos = vec.step(np.array([1]))
            total += gamma**t * infos[0]["reward_shaping"]
        assert dones[0]
        assert total == pytest.approx(-phi0, abs=1e-6)


def test_vec_set_weights_and_validation() -> None:
    vec = VecUnifiedReward(MODummyVecEnv([_make(1, "terminate")] * 2), 1.0, 0.0, 0.0)
    vec.reset()
    vec.set_weights(w_quality=0.0, w_edit=1.0)
    _, rewards, _, infos = vec.step(np.array([1, 1]))
    for i in range(2):
        assert rewards[i] == pytest.approx(infos[i]["reward_raw"]["edit"], abs=1e-6)
        assert infos[i]["reward_weights"]["edit"] == 1.0
    with pytest.raises(ValueError, match="sum to"):
        vec.set_weights(w_quality=0.5)


class ScalarRewardVecEnv(MODummyVecEnv):
    """A VecEnv that (wrongly, for this wrapper) returns one scalar per env."""

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = super().step_wait()
        return obs, rewards[:, 0], dones, infos


def test_vec_rejects_scalar_rewards() -> None:
    vec = VecUnifiedReward(ScalarRewardVecEnv([_make(2, "terminate")] * 3))
    vec.reset()
    with pytest.raises(ValueError, match=r"shape \(n_envs, 3\) = \(3, 3\), got \(3,\)"):
        vec.step(np.array([1, 1, 1]))


def test_vec_needs_reward_space() -> None:
    with pytest.raises(TypeError, match="has no reward_space"):
        VecUnifiedReward(MODummyVecEnv([lambda: ToyMOEnv(reward_space=None)]))


def test_ppo_learns_a_few_steps_on_vec_wrapper() -> None:
    from stable_baselines3 import PPO

    vec = VecUnifiedReward(MODummyVecEnv([_make(4, "terminate")] * 2))
    model = PPO("MlpPolicy", vec, n_steps=16, batch_size=16, n_epochs=1, device="cpu", seed=0)
    model.learn(32)
    assert model.num_timesteps == 32


# ---------------------------------------------------------------- shaping on normalized components

# A reward space whose bounded normalization is not the identity (unlike the default Box(0, 1)),
# so a potential read from raw instead of normalized components gives another shaping term.
SKEWED_SPACE = spaces.Box(np.array([-1.0, -0.5, 0.2]), np.array([3.0, 1.5, 0.7]), dtype=np.float64)
SHAPING_GAMMA, SHAPING_SCALE = 0.9, 1.5


class _ReferenceNormalizer:
    """Independent re-implementation of the documented normalizations, from the data seen.

    bounded: ``clip((x - low) / (high - low), 0, 1)``; running: ``sigmoid(clip(z, -5, 5))``
    with ``z = (x - mean) / sqrt(var + 1e-8)`` over every raw reward vector of a reward step
    so far (population variance; mean 0 and variance 1 before any data).
    """

    def __init__(self, normalization: str) -> None:
        self.normalization = normalization
        self.seen: list[np.ndarray] = []

    def add(self, raw: np.ndarray) -> None:
        self.seen.append(np.asarray(raw, dtype=np.float64))

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.normalization == "bounded":
            return np.clip((x - SKEWED_SPACE.low) / (SKEWED_SPACE.high - SKEWED_SPACE.low), 0, 1)
        data = np.stack(self.seen) if self.seen else None
        mean = np.zeros(3) if data is None else data.mean(axis=0)
        var = np.ones(3) if data is None else data.var(axis=0)
        z = np.clip((x - mean) / np.sqrt(var + 1e-8), -5.0, 5.0)
        return 1.0 / (1.0 + np.exp(-z))


def _phi(ref: _ReferenceNormalizer, comps: Any, potential: str) -> float:
    return float(ref(comps)[COMPONENT_NAMES.index(potential)])


# The expected shaping term is computed by hand, step by step:
# F = scale * (gamma * Phi(s') - Phi(s)), Phi(s') = 0 when s' is terminal but kept on
# truncation, Phi = the named entry of the *normalized* info["state_components"]. Phi(s) is
# the value computed when s was reached (with the running statistics of that moment); on a
# reward step the statistics first absorb the step's raw reward, then Phi(s') is taken.
# Tolerance 1e-9: everything is float64 (float32 states are cast exactly), so only rounding
# of the running mean/variance differs. Reading raw components (e.g. (x + 0.5) / 2 vs x for
# "edit") is off by far more.
@pytest.mark.parametrize("end", ["terminate", "truncate"])
@pytest.mark.parametrize("normalization", ["bounded", "running"])
def test_shaping_potential_uses_normalized_components(end: str, normalization: str) -> None:
    potential = "edit"
    ref = _ReferenceNormalizer(normalization)
    env = UnifiedRewardWrapper(
        ToyMOEnv(episode_len=3, end=end, reward_space=SKEWED_SPACE),
        normalization=normalization,  # type: ignore[arg-type]
        shaping=PotentialShaping(SHAPING_GAMMA, potential, scale=SHAPING_SCALE),
    )
    _, info = env.reset(seed=3)
    phi_s = _phi(ref, info["state_components"], potential)
    rng = np.random.default_rng(1)
    n_final, gaps = 0, []
    for _ in range(12):  # four episodes
        _, r, term, trunc, info = env.step(int(rng.integers(0, 3)))
        if info["reward_is_final"]:
            ref.add(info["state_components"])  # the toy env pays its state at the end
        phi_next = _phi(ref, info["state_components"], potential)
        expected = SHAPING_SCALE * (SHAPING_GAMMA * (0.0 if term else phi_next) - phi_s)
        assert info["reward_shaping"] == pytest.approx(expected, abs=1e-9)
        assert r == pytest.approx(info["reward_total"] + expected, abs=1e-9)
        raw_phi = float(info["state_components"][COMPONENT_NAMES.index(potential)])
        gaps.append(abs(raw_phi - phi_next))
        phi_s = phi_next
        if term or trunc:
            n_final += 1
            _, info = env.reset()
            phi_s = _phi(ref, info["state_components"], potential)
    assert n_final == 4
    assert max(gaps) > 0.05  # normalized and raw potentials really differ here


@pytest.mark.parametrize("normalization", ["bounded", "running"])
def test_vec_shaping_potential_uses_normalized_components(normalization: str) -> None:
    # Same hand computation as above for the VecEnv wrapper, with one terminating and one
    # truncating env sharing the running statistics: the batch of final raw rewards of a step
    # is absorbed before any Phi(s') of that step; after an auto-reset, Phi of the new initial
    # state comes from venv.reset_infos (with the statistics after that step). Tolerance 1e-9.
    potential = "quality"
    ref = _ReferenceNormalizer(normalization)
    venv = MODummyVecEnv(
        [
            lambda: ToyMOEnv(episode_len=3, end="terminate", reward_space=SKEWED_SPACE),
            lambda: ToyMOEnv(episode_len=4, end="truncate", reward_space=SKEWED_SPACE),
        ]
    )
    venv.seed(5)
    vec = VecUnifiedReward(
        venv,
        normalization=normalization,  # type: ignore[arg-type]
        shaping=PotentialShaping(SHAPING_GAMMA, potential, scale=SHAPING_SCALE),
    )
    vec.reset()
    phi_s = [_phi(ref, venv.reset_infos[i]["state_components"], potential) for i in range(2)]
    rng = np.random.default_rng(2)
    n_done = [0, 0]
    for _ in range(12):
        _, rewards, dones, infos = vec.step(rng.integers(0, 3, size=2))
        for info in infos:
            if info["reward_is_final"]:
                ref.add(info["state_components"])
        for i, info in enumerate(infos):
            terminated = bool(dones[i]) and not info.get("TimeLimit.truncated", False)
            phi_next = _phi(ref, info["state_components"], potential)
            expected = SHAPING_SCALE * (
                SHAPING_GAMMA * (0.0 if terminated else phi_next) - phi_s[i]
            )
            assert info["reward_shaping"] == pytest.approx(expected, abs=1e-9), (i, info)
            assert rewards[i] == pytest.approx(info["reward_total"] + expected, abs=1e-6)
            phi_s[i] = phi_next
            if dones[i]:
                n_done[i] += 1
                phi_s[i] = _phi(ref, venv.reset_infos[i]["state_components"], potential)
    assert n_done == [4, 3]


def test_reward_doc_usage_snippet_runs() -> None:
    """docs/reward.md's "How to use it" block runs as written and does what it says."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "reward.md").read_text()
    block = re.search(r"## How to use it\n\n```python\n(.*?)```", text, re.S)
    assert block is not None, "docs/reward.md lost its usage block"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)  # the project's own documentation
    env = namespace["env"]
    assert isinstance(env, UnifiedRewardWrapper)
    assert env.unifier.weights == pytest.approx({"quality": 0.6, "edit": 0.2, "consistency": 0.2})
    assert namespace["model"].gamma == 0.99
