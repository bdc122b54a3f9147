"""The batched VecEnv: SB3 VecEnv API, auto-reset, seeding, equivalence with single envs,
the VecEnv wrappers, ``make_unigen_vec_env`` backends, mixed precision and a PPO smoke test.

Tolerances: uint8 observations must be *exactly* those of ``N`` single ``UniGenEnv`` s (the
canvas ops are elementwise per image). Rewards and metric values are compared at 1e-5
absolute: the batch of ``N`` goes through the perceptual network's convolutions as one batch
instead of ``N`` batches of one, and oneDNN picks batch-size-dependent kernels whose float
sums differ in the last bits (about 2e-7 seen here).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecCheckNan

from unigen_sb3 import UniGenEnv
from unigen_sb3 import make as make_root
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_ATTRIBUTE, OP_FILL, OP_STOP
from unigen_sb3.envs.vec_env import UniGenVecEnv
from unigen_sb3.make import make_unigen_vec_env
from unigen_sb3.rewards.components import TaskBatch, component_vector
from unigen_sb3.spec import UniGenSpec, spec_of
from unigen_sb3.wrappers.actions import make_codec
from unigen_sb3.wrappers.observation import ImageStacker
from unigen_sb3.wrappers.reward import VecUnifiedReward
from unigen_sb3.wrappers.vec import VecHybridAction, VecImageObs

SIZE = 36
REWARD_ATOL = 1e-5


def _batch(ops: Any, params: np.ndarray | None = None) -> Any:
    ops = np.asarray(ops, dtype=np.int64)
    p = np.zeros((len(ops), NUM_PARAMS), np.float32) if params is None else params
    return {"op": ops, "params": np.asarray(p, np.float32)}


def _random_batch(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return _batch(rng.integers(NUM_OPS, size=n), rng.uniform(-1.2, 1.2, (n, NUM_PARAMS)))


def _assert_obs_equal(a: Any, b: Any) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope="module")
def venv() -> UniGenVecEnv:
    return UniGenVecEnv(3, size=SIZE, horizon=4, seed=0, device="cpu", render_mode="rgb_array")


# --------------------------------------------------------------------------- API


def test_spaces_reset_and_step_shapes(venv: UniGenVecEnv) -> None:
    obs = venv.reset()
    assert venv.num_envs == 3 and venv.reward_space.shape == (3,)
    for i in range(3):
        assert venv.observation_space.contains({k: v[i] for k, v in obs.items()})
    obs, rewards, dones, infos = venv.step(_batch([OP_FILL] * 3))
    assert rewards.shape == (3, 3) and rewards.dtype == np.float32
    assert dones.shape == (3,) and dones.dtype == bool and len(infos) == 3
    assert all(info["reward_is_final"] is False for info in infos)
    assert obs["canvas"].shape == (3, 3, SIZE, SIZE) and obs["canvas"].dtype == np.uint8
    assert venv.core.canvas.shape == (3, 3, SIZE, SIZE)  # callbacks read canvases from here


def test_get_set_attr_env_method_and_wrapped(venv: UniGenVecEnv) -> None:
    venv.reset()
    assert venv.get_attr("render_mode") == ["rgb_array"] * 3
    tasks = venv.get_attr("current_task")
    assert all(a is b and a is not None for a, b in zip(tasks, venv.core.tasks, strict=True))
    assert venv.get_attr("current_task", indices=[2])[0] is venv.core.tasks[2]
    assert venv.has_attr("reward_space") and not venv.has_attr("no_such_attribute")
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_attribute")
    venv.set_attr("horizon_note", 7)
    assert venv.get_attr("horizon_note", indices=[0, 1]) == [7, 7]
    with pytest.raises(ValueError, match="share their attributes"):
        venv.set_attr("horizon_note", 8, indices=[1])
    rng = np.random.default_rng(3)
    venv.set_attr("np_random", rng, indices=[1])
    assert venv.get_attr("np_random", indices=1)[0] is rng
    masks = venv.env_method("action_masks")
    np.testing.assert_array_equal(np.stack(masks), venv.action_masks())
    is_edit = [t.kind == "edit" for t in venv.get_attr("current_task")]
    np.testing.assert_array_equal(venv.action_masks()[:, OP_ATTRIBUTE], is_edit)
    frames = venv.env_method("render", indices=[0, 2])
    obs = venv.core.observations()
    assert len(frames) == 2 and frames[1].shape == (SIZE, 3 * SIZE, 3)
    np.testing.assert_array_equal(frames[1][:, :SIZE], obs["canvas"][2].transpose(1, 2, 0))
    np.testing.assert_array_equal(venv.get_images()[2], frames[1])
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [False] * 3


def test_set_attr_refuses_settings_fixed_at_construction() -> None:
    # Setting the horizon used to be accepted while episodes kept ending at the old one.
    v = UniGenVecEnv(2, size=SIZE, horizon=2, seed=0, device="cpu")
    v.reset()
    for name, value in (("horizon", 4), ("size", 64), ("task", "edit"), ("device", "cuda")):
        with pytest.raises(ValueError, match=f"{name} is fixed when UniGenVecEnv is built"):
            v.set_attr(name, value)
    assert v.get_attr("horizon") == [2, 2] and v.core.horizon == 2
    v.step(_batch([OP_FILL, OP_FILL]))
    _, _, dones, _ = v.step(_batch([OP_FILL, OP_FILL]))
    assert dones.all()


def test_render_through_env_method_follows_render_mode() -> None:
    plain = UniGenVecEnv(2, size=SIZE, seed=0, device="cpu")
    plain.reset()
    assert plain.env_method("render") == [None, None] == list(plain.get_images())


def test_bad_actions_raise_naming_the_env_and_leave_state_unchanged(venv: UniGenVecEnv) -> None:
    venv.reset()
    canvas, steps = venv.core.canvas.clone(), venv.core.steps.copy()
    bad_params = np.zeros((3, NUM_PARAMS), np.float32)
    bad_params[1, 4] = np.nan
    cases = [
        (_batch([0, 1, NUM_OPS]), r"action\['op'\]\[2\]=6 is out of range"),
        (
            {"op": np.array([0, 1.5, 2]), "params": bad_params * 0},
            r"action\['op'\]\[1\] must be an integer",
        ),
        (_batch([0, 1]), r"shape \(3,\)"),
        (_batch([0, 1, 2], bad_params), r"NaN or inf at indices \[\(1, 4\)\]"),
        ({"op": np.zeros(3, np.int64)}, "keys 'op' and 'params'"),
        ([{"op": 0, "params": np.zeros(NUM_PARAMS)}] * 2, "2 actions for 3 envs"),
    ]
    for action, message in cases:
        with pytest.raises(ValueError, match=message):
            venv.step(action)
        assert torch.equal(venv.core.canvas, canvas)
        np.testing.assert_array_equal(venv.core.steps, steps)


def test_list_of_single_actions_equals_the_dict_batch() -> None:
    rng = np.random.default_rng(1)
    batch = _random_batch(rng, 2)
    single = [
        {"op": int(o), "params": p} for o, p in zip(batch["op"], batch["params"], strict=True)
    ]
    outs = []
    for action in (batch, single):
        v = UniGenVecEnv(2, size=SIZE, seed=4, device="cpu")
        v.reset()
        outs.append(v.step(action))
    _assert_obs_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


# --------------------------------------------------------------------------- episodes


def test_auto_reset_terminal_observation_and_reset_infos() -> None:
    v = UniGenVecEnv(2, size=SIZE, horizon=2, seed=5, device="cpu")
    v.reset()
    v.step(_batch([OP_FILL, OP_STOP]))  # env 1 terminates, env 0 runs on
    obs, rewards, dones, infos = v.step(_batch([OP_FILL, OP_FILL]))  # env 0 hits the horizon
    assert dones.tolist() == [True, False]
    assert infos[0]["TimeLimit.truncated"] is True and infos[0]["reward_is_final"] is True
    assert infos[1]["TimeLimit.truncated"] is False
    terminal = infos[0]["terminal_observation"]
    assert terminal["recent"][3] == 1.0  # the final state: 2 of 2 steps taken
    assert "terminal_observation" not in infos[1]
    assert v.reward_space.contains(rewards[0]) and np.all(rewards[1] == 0)
    np.testing.assert_allclose(rewards[0][:2], infos[0]["state_components"][:2])
    # The returned observation is the new episode's first one, as reset_infos describe it:
    # env 0's second episode, i.e. what UniGenEnv(seed=5) draws at its second reset.
    single = UniGenEnv(size=SIZE, horizon=2, seed=5, device="cpu")
    single.reset()
    second_obs, second_info = single.reset()
    assert obs["recent"][0].tolist() == [0.0] * 4 and v.core.steps[0] == 0
    assert v.reset_infos[0]["step"] == 0
    assert v.reset_infos[0]["prompt_id"] == second_info["prompt_id"]
    _assert_obs_equal({k: val[0] for k, val in obs.items()}, second_obs)
    np.testing.assert_array_equal(obs["canvas"][1], v.core.observations()["canvas"][1])


def test_stop_terminates_and_is_not_truncation() -> None:
    v = UniGenVecEnv(2, size=SIZE, seed=6, device="cpu")
    v.reset()
    _, rewards, dones, infos = v.step(_batch([OP_STOP, OP_STOP]))
    assert dones.all() and not any(info["TimeLimit.truncated"] for info in infos)
    assert all(v.reward_space.contains(r) for r in rewards)


def _rollout(v: UniGenVecEnv, n_steps: int, action_seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(action_seed)
    out: list[Any] = [v.reset()]
    for _ in range(n_steps):
        out.append(v.step(_random_batch(rng, v.num_envs))[:3])
    return out


def test_seeding_is_reproducible_and_seed_method_matches_constructor() -> None:
    # With the target observed, the observations show which tasks were drawn.
    kw: dict[str, Any] = {"size": SIZE, "horizon": 3, "device": "cpu", "reference": "observed"}
    a = _rollout(UniGenVecEnv(2, seed=11, **kw), 6)
    b = _rollout(UniGenVecEnv(2, seed=11, **kw), 6)
    reseeded = UniGenVecEnv(2, seed=99, **kw)
    assert reseeded.seed(11) == [11, 12]
    c = _rollout(reseeded, 6)
    d = _rollout(UniGenVecEnv(2, seed=12, **kw), 6)
    for x, y, z in zip(a, b, c, strict=True):
        obs_x = x if isinstance(x, dict) else x[0]
        for other in (y, z):
            _assert_obs_equal(obs_x, other if isinstance(other, dict) else other[0])
    assert not np.array_equal(a[0]["target"], d[0]["target"])
    # Env i gets seed + i: env 1 of seed 11 is env 0 of seed 12.
    np.testing.assert_array_equal(a[0]["target"][1], d[0]["target"][0])


@pytest.mark.parametrize(
    ("task", "n"),
    # 10 envs: more than one CPU chunk of the metric network and of SSIM.
    [("unified", 3), ("generate", 3), ("unified", 10)],
)
def test_equivalent_to_n_single_envs_with_the_same_seeds(task: str, n: int) -> None:
    seed, horizon = 21, 4
    # Dense scoring: the per-step components are compared too (lazy scoring: test_lazy_reward).
    kw: dict[str, Any] = {
        "size": SIZE,
        "horizon": horizon,
        "device": "cpu",
        "dense_components": True,
    }
    v = UniGenVecEnv(n, task, seed=seed, **kw)
    envs = [UniGenEnv(task, seed=seed + i, **kw) for i in range(n)]
    obs = v.reset()
    singles = [e.reset() for e in envs]
    _assert_obs_equal(obs, {k: np.stack([o[k] for o, _ in singles]) for k in obs})
    for i, (_, info) in enumerate(singles):
        assert v.reset_infos[i]["prompt_id"] == info["prompt_id"]
        np.testing.assert_allclose(
            v.reset_infos[i]["state_components"], info["state_components"], atol=REWARD_ATOL
        )
    rng = np.random.default_rng(7)
    n_done = 0
    for _ in range(12):
        action = _random_batch(rng, n)
        obs, rewards, dones, infos = v.step(action)
        for i, env in enumerate(envs):
            o, r, term, trunc, info = env.step(
                {"op": int(action["op"][i]), "params": action["params"][i]}
            )
            assert dones[i] == (term or trunc)
            # Bit for bit: an episode's scores do not depend on the batch they are computed in.
            np.testing.assert_array_equal(rewards[i], np.asarray(r))
            np.testing.assert_array_equal(infos[i]["state_components"], info["state_components"])
            for key, value in info["sub_metrics"].items():
                assert infos[i]["sub_metrics"][key] == value, key
            if term or trunc:
                n_done += 1
                _assert_obs_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["TimeLimit.truncated"] == (trunc and not term)
                o, reset_info = env.reset()
                assert v.reset_infos[i]["prompt_id"] == reset_info["prompt_id"]
            _assert_obs_equal({k: val[i] for k, val in obs.items()}, o)
    assert n_done >= 3  # the comparison covered auto-resets


def _from_scratch(core: Any, prev: torch.Tensor) -> np.ndarray:
    """Components of the core's canvases computed without any cached features."""
    task = TaskBatch(core.target, core.mask, core.start, focus=core.focus)
    return component_vector(core.rewards(prev, core.canvas, task)).numpy()


def _count_network_images(core: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch size of every perceptual-network forward the core makes."""
    calls: list[int] = []
    perceptual = core.rewards.perceptual
    original = perceptual.features

    def counted(x: torch.Tensor) -> list[torch.Tensor]:
        calls.append(int(x.shape[0]))
        return original(x)

    monkeypatch.setattr(perceptual, "features", counted)
    return calls


def test_a_step_runs_the_network_only_on_the_canvases_it_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dense schedule (lazy scoring runs the network only where episodes end).
    v = UniGenVecEnv(
        4, "unified", size=SIZE, horizon=8, seed=5, device="cpu", dense_components=True
    )
    v.reset()
    core = v.core
    calls = _count_network_images(core, monkeypatch)
    params = np.full((4, NUM_PARAMS), 0.5, np.float32)
    for ops in ([OP_FILL, OP_STOP, OP_FILL, OP_STOP], [OP_STOP] * 4, [OP_FILL] * 4):
        calls.clear()
        prev = core.canvas.clone()
        result = core.step(np.array(ops), params)
        moved = int((core.canvas != prev).flatten(1).any(dim=1).sum())
        assert moved == sum(op != OP_STOP for op in ops)
        assert calls == ([moved] if moved else [])
        expected = _from_scratch(core, prev)
        np.testing.assert_allclose(core.state_components, expected, atol=REWARD_ATOL)
        final = result.terminated | result.truncated
        np.testing.assert_allclose(result.reward[final, :2], expected[final, :2], atol=REWARD_ATOL)


def test_blank_start_canvases_are_run_through_the_network_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v = UniGenVecEnv(
        3, "generate", size=SIZE, horizon=8, seed=2, device="cpu", dense_components=True
    )
    calls = _count_network_images(v.core, monkeypatch)
    v.reset()
    assert sorted(calls) == [1, 3]  # the white canvas once, then the three targets
    assert bool((v.core.start == 1.0).all())
    expected = _from_scratch(v.core, v.core.canvas)
    np.testing.assert_allclose(v.core.state_components, expected, atol=REWARD_ATOL)
    white = v.core.rewards.perceptual.features(torch.ones(1, 3, SIZE, SIZE))
    for cached, direct in zip(v.core.canvas_features or [], white, strict=True):
        torch.testing.assert_close(cached, direct.expand_as(cached), atol=1e-6, rtol=0)
    calls.clear()
    v.reset()
    assert calls == [3]  # the targets only: the white canvas's features are kept


# --------------------------------------------------------------------------- wrappers


def test_vec_image_obs_stacks_observations_and_terminal_observations() -> None:
    raw = UniGenVecEnv(2, size=SIZE, horizon=1, seed=2, device="cpu")
    stacker = ImageStacker(raw.observation_space)
    wrapped = VecImageObs(raw)
    assert wrapped.observation_space == stacker.space
    obs = wrapped.reset()
    np.testing.assert_array_equal(obs, stacker(raw.core.observations()))
    obs, _, dones, infos = wrapped.step(_batch([OP_FILL, OP_FILL]))
    assert dones.all()
    for info in infos:
        assert info["terminal_observation"].shape == stacker.space.shape
    np.testing.assert_array_equal(obs, stacker(raw.core.observations()))


def test_vec_image_obs_stacks_each_terminal_observation_like_the_raw_env() -> None:
    # Terminal observations are stacked in one batch per step: each ended episode must get
    # the stacked form of its own raw terminal observation, in its own array.
    ref = UniGenVecEnv(4, size=SIZE, horizon=3, seed=6, device="cpu")
    wrapped = VecImageObs(UniGenVecEnv(4, size=SIZE, horizon=3, seed=6, device="cpu"))
    stacker = ImageStacker(ref.observation_space)
    ref.reset()
    wrapped.reset()
    rng = np.random.default_rng(0)
    ended = 0
    for ops in ([OP_STOP, OP_FILL, OP_STOP, OP_FILL], [OP_FILL] * 4, [OP_FILL] * 4):
        action = _batch(ops, rng.uniform(-1, 1, (4, NUM_PARAMS)))
        _, _, ref_dones, ref_infos = ref.step(action)
        _, _, dones, infos = wrapped.step(action)
        np.testing.assert_array_equal(dones, ref_dones)
        images = [info["terminal_observation"] for info in infos if "terminal_observation" in info]
        assert len({id(image) for image in images}) == len(images) == int(dones.sum())
        for i in np.flatnonzero(dones):
            want = stacker(ref_infos[i]["terminal_observation"])
            np.testing.assert_array_equal(infos[i]["terminal_observation"], want)
            ended += 1
    assert ended >= 4


@pytest.mark.parametrize("encoding", ["box", "multidiscrete", "discrete"])
def test_vec_hybrid_action_decodes_like_the_codec(encoding: str) -> None:
    codec = make_codec(encoding, NUM_OPS, NUM_PARAMS)
    ref = UniGenVecEnv(2, size=SIZE, seed=3, device="cpu")
    wrapped = VecHybridAction(UniGenVecEnv(2, size=SIZE, seed=3, device="cpu"), codec)
    assert wrapped.action_space == codec.space
    ref.reset()
    wrapped.reset()
    codec.space.seed(0)
    flat = np.stack([codec.space.sample() for _ in range(2)])
    decoded = [codec.decode(row) for row in flat]
    expected = ref.step(
        _batch([d["op"] for d in decoded], np.stack([d["params"] for d in decoded]))
    )
    got = wrapped.step(flat)
    _assert_obs_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    masks = wrapped.action_masks()
    np.testing.assert_array_equal(masks, codec.action_masks(ref.action_masks()))
    np.testing.assert_array_equal(np.stack(wrapped.env_method("action_masks")), masks)


def test_maskable_ppo_sees_masks_in_the_codec_layout() -> None:
    venv = make_unigen_vec_env(2, "generate", action="multidiscrete", seed=0, size=SIZE)
    venv.reset()
    assert is_masking_supported(venv)
    masks = get_action_masks(venv)
    assert isinstance(venv.action_space, gym.spaces.MultiDiscrete)
    assert masks.shape == (2, int(np.sum(venv.action_space.nvec)))
    assert not masks[:, OP_ATTRIBUTE].any() and masks[:, OP_FILL].all()  # generation
    # get_attr gives each env its own mask method, as DummyVecEnv does (not the whole batch).
    methods = venv.get_attr("action_masks", indices=[1, 0])
    np.testing.assert_array_equal(np.stack([m() for m in methods]), masks[[1, 0]])


# --------------------------------------------------------------------------- the factory


def _step_alike(a: Any, b: Any, *, steps: int, seed: int) -> list[tuple[Any, Any]]:
    """Reset two VecEnvs and step both with the same random Box actions; assert that
    observations, rewards and dones agree, and return each step's two info lists."""
    np.testing.assert_array_equal(a.reset(), b.reset())
    rng = np.random.default_rng(seed)
    shape = a.action_space.shape
    assert shape is not None
    infos = []
    for _ in range(steps):
        action = rng.uniform(-1, 1, (a.num_envs, *shape)).astype(np.float32)
        oa, ra, da, ia = a.step(action)
        ob, rb, db, ib = b.step(action)
        np.testing.assert_array_equal(oa, ob)
        # Bit for bit as float32 (SubprocVecEnv stacks its workers' float64 rewards).
        np.testing.assert_array_equal(np.float32(ra), np.float32(rb))
        np.testing.assert_array_equal(da, db)
        infos.append((ia, ib))
    return infos


def test_make_unigen_vec_env_batched_matches_dummy_backend() -> None:
    kw: dict[str, Any] = {"seed": 8, "size": SIZE, "horizon": 3, "device": "cpu"}
    batched = make_unigen_vec_env(2, vec_env_kind="batched", **kw)
    dummy = make_unigen_vec_env(2, vec_env_kind="dummy", **kw)
    assert isinstance(dummy, DummyVecEnv)
    assert batched.observation_space == dummy.observation_space
    assert batched.action_space == dummy.action_space
    episodes = 0
    for ib, idd in _step_alike(batched, dummy, steps=8, seed=0):
        for x, y in zip(ib, idd, strict=True):
            assert x.keys() >= {"reward_components", "reward_total"}
            if "episode" in y:  # Monitor vs VecMonitor: same episode return and length
                episodes += 1
                assert x["episode"]["l"] == y["episode"]["l"]
                assert x["episode"]["r"] == pytest.approx(y["episode"]["r"], abs=1e-4)
                np.testing.assert_array_equal(x["terminal_observation"], y["terminal_observation"])
    assert episodes > 0


def test_batched_and_dummy_pay_the_same_rewards_at_a_size_off_the_vector_width() -> None:
    # 36x36 = 1,296 pixels, not a multiple of 32: before the CIELAB conversion padded its
    # image planes (metrics._CPU_LAB_ALIGN), the first episode ends of these seeds differed
    # between the two kinds in the last bits (one image converted alone vs in a batch).
    kw: dict[str, Any] = {"seed": 8, "size": SIZE, "horizon": 4, "device": "cpu"}
    batched = make_unigen_vec_env(6, vec_env_kind="batched", **kw)
    dummy = make_unigen_vec_env(6, vec_env_kind="dummy", **kw)
    ended = 0
    for ib, _ in _step_alike(batched, dummy, steps=6, seed=0):
        ended += sum("episode" in x for x in ib)
    assert ended >= 6


def test_make_unigen_vec_env_subproc_matches_dummy() -> None:
    kw: dict[str, Any] = {"seed": 3, "size": SIZE, "horizon": 3, "device": "cpu"}
    sub = make_unigen_vec_env(2, vec_env_kind="subproc", worker_threads=1, **kw)
    dummy = make_unigen_vec_env(2, vec_env_kind="dummy", **kw)
    try:
        assert isinstance(sub, SubprocVecEnv)
        assert sub.observation_space == dummy.observation_space
        assert len(_step_alike(sub, dummy, steps=4, seed=1)) == 4
    finally:
        sub.close()


def test_subproc_workers_get_a_share_of_the_threads(monkeypatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert make_root._worker_threads(2, "subproc", None) == 4
    assert make_root._worker_threads(3, "subproc", None) == 2
    assert make_root._worker_threads(64, "subproc", None) == 1
    assert make_root._worker_threads(2, "subproc", 3) == 3
    assert make_root._worker_threads(2, "dummy", None) is None
    assert make_root._worker_threads(2, "batched", None) is None
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"worker_threads must be an integer >= 1; got {bad}"):
            make_root._worker_threads(2, "subproc", bad)
    with pytest.raises(ValueError, match="worker_threads=2 needs vec_env_kind='subproc'"):
        make_unigen_vec_env(2, vec_env_kind="dummy", worker_threads=2)
    monkeypatch.undo()
    # The worker's factory sets the threads before it builds the env (in this process here).
    before = torch.get_num_threads()
    try:
        env = make_root._subproc_env(spec=UniGenSpec(size=SIZE, device="cpu"), torch_threads=1)
        assert torch.get_num_threads() == 1
        env.close()
    finally:
        torch.set_num_threads(before)


def test_make_unigen_vec_env_stack_and_bad_arguments() -> None:
    venv = make_unigen_vec_env(2, obs="dict", seed=0, size=SIZE, monitor=False)
    # The composition root's one order: raw -> action codec -> (obs) -> reward unification.
    assert isinstance(venv, VecUnifiedReward)
    assert isinstance(venv.venv, VecHybridAction) and isinstance(venv.unwrapped, UniGenVecEnv)
    assert venv.unwrapped.core.n == 2
    with pytest.raises(ValueError, match="vec_env_kind='threads'"):
        make_unigen_vec_env(2, vec_env_kind="threads")
    # Every kind runs the same env settings: a mixed-precision metric in DummyVecEnv too.
    dummy = make_unigen_vec_env(1, vec_env_kind="dummy", metric_dtype="bfloat16", size=SIZE)
    assert dummy.get_attr("metric_dtype") == ["bfloat16"]
    assert spec_of(dummy).metric_dtype == "bfloat16"
    with pytest.raises(ValueError, match="vec_env_kwargs="):
        make_unigen_vec_env(1, size=SIZE, vec_env_kwargs={"start_method": "spawn"})
    with pytest.raises(ValueError, match="action='tuple'"):
        make_unigen_vec_env(2, action="tuple")
    with pytest.raises(ValueError, match="n_envs=0"):
        UniGenVecEnv(0)
    # Checked before the kind is chosen: DummyVecEnv and SubprocVecEnv used to fail inside SB3
    # (IndexError, unpacking error), and the batched stack with a dict-update error.
    for kind in make_root.VEC_ENV_KINDS:
        with pytest.raises(ValueError, match="n_envs=0 must be an int >= 1"):
            make_unigen_vec_env(0, vec_env_kind=kind)
        with pytest.raises(TypeError, match="action_options must be a mapping, got 'abc'"):
            make_unigen_vec_env(1, vec_env_kind=kind, action_options="abc")
    with pytest.raises(ValueError, match="metric_dtype='int8'"):
        UniGenVecEnv(1, metric_dtype="int8", size=SIZE)
    with pytest.raises(ValueError, match="size=16"):
        UniGenVecEnv(1, size=16)
    with pytest.raises(RuntimeError, match="before reset"):
        UniGenVecEnv(1, size=SIZE, device="cpu").step(_batch([0]))


def test_batched_stack_passes_reset_infos_through_its_monitor() -> None:
    # SB3's VecMonitor keeps empty reset_infos; the batched stack showed [{}, {}] where the
    # DummyVecEnv stack shows each env's reset info.
    batched = make_unigen_vec_env(2, seed=4, size=SIZE, horizon=1)
    dummy = make_unigen_vec_env(2, seed=4, size=SIZE, horizon=1, vec_env_kind="dummy")
    batched.reset()
    dummy.reset()
    for _ in range(2):
        prompts = [info["prompt"] for info in dummy.reset_infos]
        assert [info["prompt"] for info in batched.reset_infos] == prompts
        assert all(info["step"] == 0 for info in batched.reset_infos)
        action = np.zeros((2, *batched.action_space.shape), np.float32)
        batched.step(action)  # horizon 1: every env ends and is reset with a new task
        dummy.step(action)


# --------------------------------------------------------------------------- precision, devices


def test_bfloat16_metric_network_stays_within_tolerance_of_float32() -> None:
    """bfloat16 autocast of the perceptual forward: quality within 0.05 of float32, the
    other components bit-identical.

    Only ``quality`` (perceptual distance and realism) goes through the autocast network
    (:class:`~unigen_sb3.rewards.mixed_precision.MixedPrecisionPerceptual`); measured here up
    to about 0.02 (the realism score, an exponential of a Mahalanobis distance, moves most); float16
    stays within about 1e-3. ``edit`` and ``consistency`` and their sub-metrics are float32
    colour/SSIM/IoU metrics of the same canvases with the same settings (``color_tol``,
    ``change_threshold``, ``style_scale`` copied from the float32 computer), so they must be
    *equal*, not merely close: measured difference 0.
    """
    kw: dict[str, Any] = {
        "size": SIZE,
        "horizon": 4,
        "seed": 0,
        "device": "cpu",
        "dense_components": True,
    }
    fp32 = UniGenVecEnv(4, **kw)
    bf16 = UniGenVecEnv(4, metric_dtype="bfloat16", **kw)
    fp32.reset()
    bf16.reset()
    rng = np.random.default_rng(0)
    diffs = []
    paid = 0
    for _ in range(6):
        action = _random_batch(rng, 4)
        oa, ra, _, ia = fp32.step(action)
        ob, rb, _, ib = bf16.step(action)
        _assert_obs_equal(oa, ob)  # the canvas engine does not use the network
        np.testing.assert_allclose(rb[:, 0], ra[:, 0], atol=0.05)  # quality
        np.testing.assert_array_equal(rb[:, 1:], ra[:, 1:])  # edit, consistency
        paid += int(np.count_nonzero(ra[:, 1:]))
        for x, y in zip(ia, ib, strict=True):
            sx, sy = x["state_components"], y["state_components"]
            np.testing.assert_allclose(sy[0], sx[0], atol=0.05)
            np.testing.assert_array_equal(sy[1:], sx[1:])
            assert x["sub_metrics"].keys() == y["sub_metrics"].keys()
            for key, value in x["sub_metrics"].items():
                if key.startswith("quality/"):
                    assert y["sub_metrics"][key] == pytest.approx(value, abs=0.05), key
                else:
                    assert y["sub_metrics"][key] == value, key
            diffs.append(
                abs(y["sub_metrics"]["quality/perceptual"] - x["sub_metrics"]["quality/perceptual"])
            )
    assert max(diffs) > 0  # autocast really ran in bfloat16
    assert paid > 0  # some episodes ended: the final edit/consistency rewards were compared


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_env_keeps_state_on_device_and_matches_cpu() -> None:
    kw: dict[str, Any] = {"size": SIZE, "horizon": 4, "seed": 1}
    gpu = UniGenVecEnv(4, device="cuda", **kw)
    cpu = UniGenVecEnv(4, device="cpu", **kw)
    assert gpu.core.canvas.is_cuda and gpu.core.target_features is None
    obs_g, obs_c = gpu.reset(), cpu.reset()
    _assert_obs_equal(obs_g, obs_c)
    for feats in (gpu.core.target_features, gpu.core.canvas_features):
        assert feats is not None and all(f.is_cuda for f in feats)
    rng = np.random.default_rng(0)
    for _ in range(6):
        action = _random_batch(rng, 4)
        og, rg, dg, _ = gpu.step(action)
        oc, rc, dc, _ = cpu.step(action)
        assert isinstance(og["canvas"], np.ndarray) and og["canvas"].dtype == np.uint8
        np.testing.assert_array_equal(dg, dc)
        # Different kernels (cuDNN vs oneDNN): images may differ by one level after rounding.
        assert np.abs(og["canvas"].astype(int) - oc["canvas"]).max() <= 1
        np.testing.assert_allclose(rg, rc, atol=1e-3)


# --------------------------------------------------------------------------- training


@pytest.mark.slow
def test_ppo_cnn_policy_trains_on_the_batched_env() -> None:
    venv = VecCheckNan(
        make_unigen_vec_env(n_envs=4, seed=0, size=SIZE, horizon=4, device="cpu"),
        raise_exception=True,
    )
    model = PPO("CnnPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    assert model.num_timesteps >= 64
    assert model.ep_info_buffer is not None
    assert len(model.ep_info_buffer) > 0  # VecMonitor reports episodes to the logger
    returns = [ep["r"] for ep in model.ep_info_buffer]
    assert all(0.0 <= r <= 1.0 for r in returns)  # unified reward in [0, 1], paid once


def test_without_autoreset_an_ended_episode_stays_ended() -> None:
    venv = UniGenVecEnv(2, size=SIZE, horizon=3, seed=7, device="cpu")
    venv.autoreset = False
    venv.reset()
    tasks = list(venv.core.tasks)
    stop_and_fill = {"op": np.array([OP_STOP, OP_FILL]), "params": np.zeros((2, NUM_PARAMS))}
    _, _, dones, _ = venv.step(stop_and_fill)
    assert dones.tolist() == [True, False]
    ended = venv.core.canvas[0].clone()
    # Env 0 keeps its task and canvas; a fill sent to it is replaced by stop.
    fill = {"op": np.array([OP_FILL, OP_FILL]), "params": np.ones((2, NUM_PARAMS))}
    venv.step(fill)
    assert venv.core.tasks[0] is tasks[0]
    torch.testing.assert_close(venv.core.canvas[0], ended)
    assert venv.last_actions is not None and venv.last_actions[0].tolist() == [OP_STOP, OP_FILL]
    venv.reset()
    assert not venv._ended.any()


def test_observe_prompt_of_swaps_only_the_observed_prompt() -> None:
    venv = UniGenVecEnv(3, size=SIZE, horizon=2, device="cpu")
    venv.seed(3)
    own = venv.reset()["attributes"].copy()
    tasks = [t.prompt.text for t in venv.core.tasks if t is not None]
    venv.seed(3)  # the same tasks again
    venv.set_options([{"observe_prompt_of": j} for j in (1, 2, 0)])
    swapped = venv.reset()["attributes"]
    np.testing.assert_array_equal(swapped, own[[1, 2, 0]])
    assert [t.prompt.text for t in venv.core.tasks if t is not None] == tasks  # tasks unchanged
    venv.seed(3)
    np.testing.assert_array_equal(venv.reset()["attributes"], own)  # options are used once
    venv.set_options({"observe_prompt": 1})
    with pytest.raises(ValueError, match=r"unknown keys \['observe_prompt'\]"):
        venv.reset()
    venv.set_options({"observe_prompt_of": 3})
    with pytest.raises(ValueError, match=r"observe_prompt_of=3 of env 0 must be an env index"):
        venv.reset()
