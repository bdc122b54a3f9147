"""HybridActorCriticPolicy: the distribution against hand computations, masks, predict,
save/load, and PPO / A2C training on the single env and the batched VecEnv.

Everything runs on a 36 x 36 canvas with horizon 4 and a small policy head, on CPU.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from cli_support import QUICKSTART, TINY
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from unigen_sb3 import make_unigen_env, make_unigen_vec_env
from unigen_sb3.callbacks import HybridEntropyCallback
from unigen_sb3.configs import ConfigError, load_config
from unigen_sb3.envs import canvas
from unigen_sb3.experiments import train
from unigen_sb3.experiments.algorithms import check_algorithm
from unigen_sb3.policies import (
    HybridActorCriticPolicy,
    HybridCnnPolicy,
    HybridDistribution,
    HybridMultiInputPolicy,
    op_param_table,
)
from unigen_sb3.wrappers.actions import BoxCodec

ENV = {"size": 36, "horizon": 4}
K, P = canvas.NUM_OPS, canvas.NUM_PARAMS
SMALL = {"policy_kwargs": {"net_arch": [32]}}
PPO_KW = {"n_steps": 32, "batch_size": 32, "n_epochs": 1, **SMALL}
A2C_KW = {"n_steps": 8, **SMALL}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    th.set_num_threads(1)


def _ppo(env: Any, **kwargs: Any) -> PPO:
    return PPO(HybridCnnPolicy, env, seed=0, device="cpu", **{**PPO_KW, **kwargs})


def _obs_batch(n: int = 8, task: str = "unified", seed: int = 0) -> np.ndarray:
    """``n`` image observations of different tasks (one reset each)."""
    env = make_unigen_env(task, seed=seed, **ENV)
    return np.stack([env.reset()[0] for _ in range(n)])


# ---------------------------------------------------------------------- the op table


def test_op_param_table_is_derived_from_op_params() -> None:
    table = op_param_table()
    assert table.shape == (K, P)
    for k, op in enumerate(canvas.OPS):
        read = {canvas.PARAM_NAMES[j] for j in np.flatnonzero(table[k])}
        assert read == set(canvas.OP_PARAMS[op])
    with pytest.raises(ValueError, match="unknown parameter 'colour'"):
        op_param_table({"stop": (), "paint": ("colour",)})


def test_the_policy_reads_op_params_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    # The other engineer may change which parameters an op reads: nothing is hard-coded.
    changed = {**canvas.OP_PARAMS, "style": ("red_or_brightness", "green_or_saturation")}
    monkeypatch.setattr(canvas, "OP_PARAMS", changed)
    model = _ppo(make_unigen_env(**ENV))
    style = canvas.OPS.index("style")
    assert model.policy.op_params["style"] == ["red_or_brightness", "green_or_saturation"]
    assert model.policy.action_dist.reads[style].nonzero().flatten().tolist() == [3, 4]


# ---------------------------------------------------------------------- the distribution

# K=3 ops, P=2 params: op 0 reads nothing, op 1 reads p0, op 2 reads p0 and p1.
READS = th.tensor([[False, False], [True, False], [True, True]])
LOGITS = th.tensor([[0.3, -0.2, 1.1]])
MEANS = th.tensor([[[0.9, 0.9], [0.1, -0.5], [-0.4, 0.6]]])
LOG_STD = th.tensor([[0.0, 0.0], [-0.5, 0.2], [0.3, -1.0]])


def _small_dist() -> HybridDistribution:
    return HybridDistribution(READS).proba_distribution(LOGITS, MEANS, LOG_STD)


def _normal_log_pdf(x: float, mu: float, log_std: float) -> float:
    sigma = math.exp(log_std)
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def test_log_prob_matches_a_hand_computation() -> None:
    logits = LOGITS[0].tolist()
    log_z = math.log(sum(math.exp(v) for v in logits))
    # op 2 (+1 at index 2) reads both params; op 1 reads only p0; op 0 reads none.
    actions = th.tensor(
        [[-1.0, -1.0, 1.0, 0.25, -0.75], [-1.0, 1.0, -1.0, 1.5, 0.3], [1.0, -1.0, -1.0, 0.2, 0.2]]
    )
    expected = [
        logits[2] - log_z + _normal_log_pdf(0.25, -0.4, 0.3) + _normal_log_pdf(-0.75, 0.6, -1.0),
        logits[1] - log_z + _normal_log_pdf(1.5, 0.1, -0.5),
        logits[0] - log_z,
    ]
    got = HybridDistribution(READS).proba_distribution(
        LOGITS.repeat(3, 1), MEANS.repeat(3, 1, 1), LOG_STD
    )
    assert got.log_prob(actions).tolist() == pytest.approx(expected, abs=1e-5)


def test_entropy_matches_a_hand_computation() -> None:
    logits = LOGITS[0].tolist()
    z = sum(math.exp(v) for v in logits)
    p = [math.exp(v) / z for v in logits]
    h_op = -sum(q * math.log(q) for q in p)

    def h_normal(log_std: float) -> float:
        return 0.5 + 0.5 * math.log(2 * math.pi) + log_std

    h_params = p[1] * h_normal(-0.5) + p[2] * (h_normal(0.3) + h_normal(-1.0))
    dist = _small_dist()
    assert float(dist.op_entropy()[0]) == pytest.approx(h_op, abs=1e-5)
    assert float(dist.param_entropy()[0]) == pytest.approx(h_params, abs=1e-5)
    assert float(dist.entropy()[0]) == pytest.approx(h_op + h_params, abs=1e-5)


def test_masked_op_has_probability_zero_and_is_never_sampled() -> None:
    dist = HybridDistribution(READS).proba_distribution(
        LOGITS.repeat(2000, 1), MEANS.repeat(2000, 1, 1), LOG_STD
    )
    dist.apply_masking(np.array([True, True, False]))  # the most likely op is masked
    assert (dist.op_probs()[:, 2] == 0).all()
    th.manual_seed(0)
    ops = dist.sample()[:, :3].argmax(dim=1)
    assert set(ops.tolist()) == {0, 1}
    assert dist.mode()[0, :3].argmax().item() == 0  # the most likely of the valid ops
    # The masked entropy is the entropy of the renormalized two-op distribution.
    p = th.softmax(LOGITS[0, :2], dim=0)
    h_op = float(-(p * p.log()).sum())
    assert float(dist.op_entropy()[0]) == pytest.approx(h_op, abs=1e-5)
    with pytest.raises(ValueError, match=r"action_masks\[0\] masks every op"):
        dist.apply_masking(np.zeros((2000, 3), dtype=bool))
    with pytest.raises(ValueError, match="box layout"):
        dist.apply_masking(np.ones(4, dtype=bool))


def test_unread_parameters_do_not_change_log_prob() -> None:
    model = _ppo(make_unigen_env(**ENV))
    obs, _ = model.policy.obs_to_tensor(_obs_batch(1))
    dist = model.policy.get_distribution(obs)

    def log_prob(action: th.Tensor) -> float:
        return float(dist.log_prob(action).detach()[0])

    table = op_param_table()
    rng = np.random.default_rng(0)
    for k in range(K):
        action = BoxCodec(K, P).encode({"op": k, "params": rng.uniform(-1, 1, P)})
        base = th.as_tensor(action)[None]
        before = log_prob(base)
        unread, read = np.flatnonzero(~table[k]), np.flatnonzero(table[k])
        changed = base.clone()
        changed[0, K + unread] = th.as_tensor(rng.uniform(-3, 3, unread.size), dtype=th.float32)
        assert log_prob(changed) == pytest.approx(before, abs=1e-6), k
        if read.size:
            moved = base.clone()
            moved[0, K + read[0]] += 0.5
            assert log_prob(moved) != pytest.approx(before, abs=1e-6), k


# ---------------------------------------------------------------------- the policy


def test_non_box_action_spaces_are_refused_with_the_space() -> None:
    with pytest.raises(ValueError, match=r"needs the flat `box` action space.*Discrete\(463\)"):
        PPO(HybridCnnPolicy, make_unigen_env(action="discrete", **ENV), device="cpu")


def test_evaluate_actions_returns_the_sampling_log_prob_of_the_stored_action() -> None:
    # lr 0: learn() collects a rollout and "trains" without changing the policy, so the
    # rollout buffer's log-probs must equal a fresh evaluation of its (unclipped) actions.
    model = _ppo(
        make_unigen_env(seed=0, **ENV),
        learning_rate=0.0,
        policy_kwargs={"net_arch": [32], "log_std_init": 0.5},
    )
    model.learn(32)
    buf = model.rollout_buffer
    actions = th.as_tensor(buf.actions)
    assert (actions[:, K:].abs() > 1).any(), "the test needs params sampled outside [-1, 1]"
    obs = th.as_tensor(buf.observations)
    model.policy.set_training_mode(False)
    with th.no_grad():
        _, log_prob, _ = model.policy.evaluate_actions(obs, actions)
    np.testing.assert_allclose(log_prob.numpy(), buf.log_probs.reshape(-1), atol=1e-4)
    # Clipping the stored action (as the env sees it) would give another log-prob.
    with th.no_grad():
        _, clipped_lp, _ = model.policy.evaluate_actions(obs, actions.clamp(-1, 1))
    assert not np.allclose(clipped_lp.numpy(), buf.log_probs.reshape(-1), atol=1e-4)


def test_masks_from_the_env_are_honoured_by_predict() -> None:
    env = make_unigen_env("generate", seed=0, **ENV)
    obs, _ = env.reset()
    mask = env.unwrapped.action_masks()
    attribute = canvas.OPS.index("attribute")
    assert not mask[attribute]
    model = _ppo(env)
    batch = np.repeat(obs[None], 512, axis=0)
    free, _ = model.policy.predict(batch)
    masked, _ = model.policy.predict(batch, action_masks=BoxCodec(K, P).action_masks(mask))
    assert (free[:, :K].argmax(axis=1) == attribute).any()  # possible without the mask
    assert not (masked[:, :K].argmax(axis=1) == attribute).any()
    # The batched VecEnv gives (N, K) masks in the box layout, as MaskablePPO would ask.
    venv = make_unigen_vec_env(4, "generate", seed=0, vec_env_kind="batched", **ENV)
    vec_masks = np.stack(venv.env_method("action_masks"))
    assert vec_masks.shape == (4, K) and not vec_masks[:, attribute].any()
    vec_obs = np.repeat(venv.reset(), 64, axis=0)
    vec_actions, _ = model.policy.predict(vec_obs, action_masks=np.repeat(vec_masks, 64, axis=0))
    assert not (vec_actions[:, :K].argmax(axis=1) == attribute).any()
    only_fill = np.eye(K, dtype=bool)[canvas.OPS.index("fill")]
    forced, _ = model.policy.predict(obs, action_masks=only_fill)
    assert int(np.argmax(forced[:K])) == canvas.OPS.index("fill")


def test_deterministic_predict_is_the_argmax_op_and_its_mean_params() -> None:
    model = _ppo(make_unigen_env(**ENV))
    batch = _obs_batch(6)
    obs, _ = model.policy.obs_to_tensor(batch)
    with th.no_grad():
        dist = model.policy.get_distribution(obs)
        ops = dist.op_logits.argmax(dim=1)
        means = dist.param_means[th.arange(6), ops]
    actions, _ = model.predict(batch, deterministic=True)
    again, _ = model.predict(batch, deterministic=True)
    np.testing.assert_array_equal(actions, again)
    np.testing.assert_array_equal(actions[:, :K].argmax(axis=1), ops.numpy())
    assert set(np.unique(actions[:, :K]).tolist()) <= {-1.0, 1.0}
    np.testing.assert_allclose(actions[:, K:], means.clamp(-1, 1).numpy(), atol=1e-6)


def test_save_and_load_give_the_same_deterministic_actions(tmp_path: Path) -> None:
    env = make_unigen_env(seed=0, **ENV)
    model = _ppo(env)
    model.learn(32)
    batch = _obs_batch(4)
    before, _ = model.predict(batch, deterministic=True)
    model.save(tmp_path / "hybrid")
    loaded = PPO.load(tmp_path / "hybrid", device="cpu")
    assert isinstance(loaded.policy, HybridCnnPolicy)
    assert loaded.policy.op_params == model.policy.op_params
    after, _ = loaded.predict(batch, deterministic=True)
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
    ("algo", "kwargs", "vec"),
    [(PPO, PPO_KW, False), (PPO, PPO_KW, True), (A2C, A2C_KW, False), (A2C, A2C_KW, True)],
    ids=["PPO-single", "PPO-batched", "A2C-single", "A2C-batched"],
)
def test_ppo_and_a2c_learn_with_the_hybrid_policy(
    algo: type[BaseAlgorithm], kwargs: dict[str, Any], vec: bool
) -> None:
    if vec:
        env: Any = make_unigen_vec_env(4, seed=0, vec_env_kind="batched", **ENV)
    else:
        env = make_unigen_env(seed=0, **ENV)
    model = algo(HybridCnnPolicy, env, seed=0, device="cpu", **kwargs)
    start = model.policy.param_log_std.detach().clone()
    model.learn(256)
    assert model.num_timesteps >= 256
    assert not th.equal(start, model.policy.param_log_std.detach())  # it trained
    action, _ = model.predict(env.reset()[0] if not vec else env.reset(), deterministic=True)
    assert np.all(np.abs(action) <= 1)


def test_dict_observations_use_the_multi_input_variant() -> None:
    model = A2C(
        HybridMultiInputPolicy, make_unigen_env(obs="dict", seed=0, **ENV), device="cpu", **A2C_KW
    )
    model.learn(16)
    assert isinstance(model.policy, HybridActorCriticPolicy)


def test_op_and_param_entropies_reach_tensorboard_apart(tmp_path: Path) -> None:
    model = _ppo(make_unigen_env(seed=0, **ENV), batch_size=16, tensorboard_log=str(tmp_path))
    model.learn(128, callback=HybridEntropyCallback(), tb_log_name="run")
    acc = EventAccumulator(str(tmp_path / "run_1"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("train/op_entropy", "train/param_entropy", "train/entropy_loss"):
        assert tag in tags, (tag, sorted(tags))

    def values(tag: str) -> list[float]:
        return [e.value for e in acc.Scalars(tag)]

    op, param = values("train/op_entropy"), values("train/param_entropy")
    # Dumps 2-4 show updates 1-3 (SB3 trains after dumping); entropy_loss of the same updates.
    loss = values("train/entropy_loss")
    assert len(op) == len(param) == len(loss) == 3
    assert all(0 < h <= math.log(K) + 1e-6 for h in op)
    np.testing.assert_allclose(np.add(op, param), -np.asarray(loss), rtol=1e-5)


def test_entropy_callback_refuses_a_plain_policy() -> None:
    model = PPO("CnnPolicy", make_unigen_env(**ENV), device="cpu", n_steps=8, batch_size=8)
    with pytest.raises(TypeError, match="pop_entropy_stats"):
        model.learn(8, callback=HybridEntropyCallback())


# ---------------------------------------------------------------------- config and CLI


@pytest.mark.parametrize(
    ("obs", "cls"), [("image", HybridCnnPolicy), ("dict", HybridMultiInputPolicy)]
)
@pytest.mark.parametrize("algo", ["PPO", "A2C"])
def test_config_policy_hybrid_maps_to_the_policy_of_the_obs_mode(
    algo: str, obs: str, cls: type
) -> None:
    assert check_algorithm(algo, "hybrid", {}, "box", obs)[1] is cls


@pytest.mark.parametrize(
    ("algo", "action", "path", "message"),
    [
        (
            "PPO",
            "discrete",
            "env.action",
            "acts on the flat 'box' encoding; got env.action='discrete'",
        ),
        ("A2C", "multidiscrete", "env.action", "got env.action='multidiscrete'"),
        (
            "SAC",
            "box",
            "algorithm.policy",
            "works with \\['PPO', 'A2C'\\].*got algorithm.name='SAC'",
        ),
        ("MaskablePPO", "multidiscrete", "algorithm.policy", "MaskablePPO refuses Box"),
    ],
)
def test_config_policy_hybrid_is_refused_elsewhere(
    algo: str, action: str, path: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        check_algorithm(algo, "hybrid", {}, action, "image")
    assert info.value.path == path


def test_train_with_policy_hybrid_logs_both_entropies(tmp_path: Path) -> None:
    cfg = load_config(
        QUICKSTART,
        [*TINY, "env.action=box", "algorithm.policy=hybrid", "training.total_timesteps=96"],
    )
    result = train(cfg, tmp_path / "run", evaluate=False)
    assert isinstance(result.model.policy, HybridCnnPolicy)
    events = sorted(result.run_dir.tb_dir.rglob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events[0].parent), size_guidance={"scalars": 0})
    acc.Reload()
    assert {"train/op_entropy", "train/param_entropy"} <= set(acc.Tags()["scalars"])
