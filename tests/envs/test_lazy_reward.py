"""Lazy scoring: the reward's components are computed where they are paid, and the paid
rewards are bit for bit those of the dense schedule (every component every step).

Exact equality (no tolerance) is the point: an image's perceptual features, distances and
realism do not depend on the batch they are computed in (fixed-shape calls, see
``PerceptualDistance._run_slices`` and ``fixed_rows``), so scoring an episode's final canvas
alone at its end gives the value the dense schedule computed in a batch of all ``N``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from unigen_sb3.envs.canvas import NUM_PARAMS, OP_FILL, OP_STOP, OP_STROKE
from unigen_sb3.envs.env import UniGenEnv, step_components_of
from unigen_sb3.envs.vec_env import UniGenVecEnv
from unigen_sb3.make import make_unigen_vec_env
from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.spec import UniGenSpec
from unigen_sb3.wrappers.actions import ACTION_ENCODINGS

SIZE = 36


def _paid(spec: UniGenSpec, kind: str, steps: int = 7) -> tuple[np.ndarray, list[Any]]:
    """Unified rewards and the raw paid components of a seeded random-action run."""
    venv = make_unigen_vec_env(3, spec, seed=11, vec_env_kind=kind)
    venv.action_space.seed(5)
    venv.reset()
    rewards, raws = [], []
    for _ in range(steps):
        actions = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
        _, reward, _, infos = venv.step(actions)
        rewards.append(reward)
        raws += [
            (info["reward_raw"], info["temporal_min"])
            for info in infos
            if info.get("reward_is_final")
        ]
    venv.close()
    return np.stack(rewards), raws


@pytest.mark.parametrize("kind", ["batched", "dummy"])
@pytest.mark.parametrize("action", ACTION_ENCODINGS)
@pytest.mark.parametrize("task", ["generate", "edit", "unified"])
def test_lazy_and_dense_pay_bit_identical_rewards(task: str, action: str, kind: str) -> None:
    lazy = UniGenSpec(task=task, action=action, size=SIZE, horizon=3, device="cpu")
    dense = lazy.replace(dense_components=True)
    r_lazy, raw_lazy = _paid(lazy, kind)
    r_dense, raw_dense = _paid(dense, kind)
    assert raw_lazy, "no episode ended: the test would compare nothing"
    np.testing.assert_array_equal(r_lazy, r_dense)
    assert raw_lazy == raw_dense


def _count_images(env_rewards: Any) -> list[int]:
    """Record the batch size of every network call; empties the cache of photo starts'
    features (shared by the process's envs) so that counts do not depend on earlier tests."""
    env_rewards.start_features.clear()
    calls: list[int] = []
    perceptual = env_rewards.perceptual
    original = perceptual.features

    def counting(x: torch.Tensor) -> list[torch.Tensor]:
        calls.append(int(x.shape[0]))
        return original(x)

    perceptual.features = counting
    return calls


def test_lazy_runs_the_network_only_where_an_episode_ends() -> None:
    venv = UniGenVecEnv(4, "edit", size=SIZE, horizon=3, seed=0, device="cpu")
    calls = _count_images(venv.rewards)
    try:
        venv.reset()
        assert calls == [], "a lazy reset ran the network"
        params = np.zeros((4, NUM_PARAMS), np.float32)
        venv.step({"op": np.full(4, OP_STROKE), "params": params})  # nobody ends
        assert calls == []
        # Envs 0 and 2 stop: one forward of their targets, start canvases and final canvases.
        venv.step({"op": np.array([OP_STOP, OP_STROKE, OP_STOP, OP_STROKE]), "params": params})
        assert calls == [2 * 3]
    finally:
        del venv.rewards.perceptual.features


def test_temporal_ssim_runs_once_per_changed_canvas_and_step() -> None:
    # Ending episodes' consistency reads the step's temporal instead of computing it again.
    venv = UniGenVecEnv(4, "edit", size=SIZE, horizon=3, seed=0, device="cpu")
    computed = venv.rewards.temporal
    rows: list[int] = []

    def counting(prev: torch.Tensor, canvas: torch.Tensor, outside: torch.Tensor) -> Any:
        rows.append(int(prev.shape[0]))
        return computed(prev, canvas, outside)

    venv.rewards.temporal = counting  # type: ignore[method-assign]
    try:
        venv.reset()
        params = np.zeros((4, NUM_PARAMS), np.float32)
        params[:, 6] = 1.0  # a fill that changes every canvas
        ops = np.array([OP_FILL, OP_FILL, OP_STOP, OP_STOP])
        _, _, dones, infos = venv.step({"op": ops, "params": params})
    finally:
        del venv.rewards.temporal
    assert dones.tolist() == [False, False, True, True]
    assert rows == [2], "the temporal SSIM ran more than once, or not on the changed canvases"
    for i in (2, 3):  # a stop leaves its canvas as it was: temporal exactly 1
        sub = infos[i]["sub_metrics"]
        assert sub["consistency/temporal"] == 1.0
        assert infos[i]["state_components"][2] == np.float32(sub["consistency/style"])


@pytest.mark.parametrize("task", ["edit", "generate"])
def test_a_final_canvas_equal_to_its_start_reuses_the_start_features(task: str) -> None:
    # Envs 0 and 1 stop at once (their canvases never changed), envs 2 and 3 stroke. The
    # stopped episodes' final canvases take their starts' features: the forward holds their
    # targets and (edits) start photos only; generation's blank start is computed once.
    params = np.zeros((4, NUM_PARAMS), np.float32)
    ops = np.array([OP_STOP, OP_STOP, OP_STROKE, OP_STROKE])
    paid = []
    for dense in (False, True):
        venv = UniGenVecEnv(
            4, task, size=SIZE, horizon=3, seed=2, device="cpu", dense_components=dense
        )
        calls = _count_images(venv.rewards)
        try:
            venv.reset()
            before = len(calls)
            _, reward, dones, infos = venv.step({"op": ops, "params": params})
            if not dense:
                assert calls[before:] == ([1, 2] if task == "generate" else [2 * 2])
        finally:
            del venv.rewards.perceptual.features
        assert dones.tolist() == [True, True, False, False]
        # A wrong reuse would move the distance from the target, and so the realism term.
        paid.append([(reward[i].tolist(), infos[i]["sub_metrics"]) for i in (0, 1)])
    assert paid[0] == paid[1]
    assert all("quality/realism" in sub for _, sub in paid[0])


def test_a_photo_start_runs_the_network_once_per_process() -> None:
    venv = UniGenVecEnv(8, "edit", size=SIZE, horizon=3, seed=0, device="cpu")
    venv.reset()
    core = venv.core
    photos = [i for i, t in enumerate(core.tasks) if t is not None and t.source == "photos"]
    assert photos, "seed 0 drew no photo edit: the test would check nothing"
    idx = torch.tensor(photos)
    alone = venv.rewards.perceptual.features(core.start[idx])
    calls = _count_images(venv.rewards)
    try:
        _, first, _ = core._reset_features(idx, np.asarray(photos))
        _, again, _ = core._reset_features(idx, np.asarray(photos))
    finally:
        del venv.rewards.perceptual.features
    # First: the targets and the photos; then the targets only, the photos' features cached.
    assert calls == [2 * len(photos), len(photos)]
    for a, b, c in zip(alone, first, again, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_dense_runs_the_network_at_resets_and_changed_canvases() -> None:
    venv = UniGenVecEnv(
        2, "edit", size=SIZE, horizon=3, seed=0, device="cpu", dense_components=True
    )
    calls = _count_images(venv.rewards)
    try:
        venv.reset()
        assert calls == [4]  # targets and start photos
        params = np.zeros((2, NUM_PARAMS), np.float32)
        params[:, 6] = 1.0  # a fill that changes the canvas
        venv.step({"op": np.full(2, OP_FILL), "params": params})
        assert calls[1:] == [2]
    finally:
        del venv.rewards.perceptual.features


def test_state_components_say_what_was_computed() -> None:
    params = np.zeros(NUM_PARAMS, np.float32)
    lazy = UniGenEnv("edit", size=SIZE, horizon=3, seed=1, device="cpu")
    _, info = lazy.reset()
    assert "state_components" not in info and info["sub_metrics"] == {}
    *_, info = lazy.step({"op": OP_STROKE, "params": params})
    assert "state_components" not in info and not info["reward_is_final"]
    assert list(info["sub_metrics"]) == ["consistency/temporal"]  # computed every step
    *_, info = lazy.step({"op": OP_STOP, "params": params})
    assert info["reward_is_final"] and np.all(np.isfinite(info["state_components"]))
    assert len(info["sub_metrics"]) == 7

    partial = UniGenEnv(
        "edit", size=SIZE, horizon=3, seed=1, device="cpu", dense_components=["edit"]
    )
    _, info = partial.reset()
    state = info["state_components"]
    assert np.isfinite(state[1]) and np.isnan(state[0]) and np.isnan(state[2])
    assert sorted(info["sub_metrics"]) == [
        "edit/accuracy",
        "edit/localization",
        "edit/preservation",
    ]

    dense = UniGenEnv("edit", size=SIZE, horizon=3, seed=1, device="cpu", dense_components=True)
    _, info = dense.reset()
    assert np.all(np.isfinite(info["state_components"])) and len(info["sub_metrics"]) == 7


def test_unchanged_canvas_has_temporal_exactly_one() -> None:
    venv = UniGenVecEnv(1, "edit", size=SIZE, horizon=3, seed=0, device="cpu")
    venv.reset()
    canvas = venv.core.canvas
    value = venv.rewards.temporal(canvas, canvas.clone(), venv.core.outside)
    assert value.tolist() == [1.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, ()),
        (True, COMPONENT_NAMES),
        (["consistency", "edit"], ("edit", "consistency")),
        ((), ()),
    ],
)
def test_step_components_of(value: Any, expected: tuple[str, ...]) -> None:
    assert step_components_of(value) == expected


@pytest.mark.parametrize("bad", ["edit", ["edit", "style"], 1, None, {"edit"}])
def test_dense_components_refuses_bad_values(bad: Any) -> None:
    with pytest.raises(ValueError, match="dense_components"):
        UniGenVecEnv(1, size=SIZE, device="cpu", dense_components=bad)


def test_spec_asks_the_raw_env_for_what_shaping_reads() -> None:
    spec = UniGenSpec(size=SIZE, device="cpu")
    assert spec.env_kwargs()["dense_components"] is False
    shaped = spec.replace(shaping=PotentialShaping(0.99, potential="edit"))
    assert shaped.env_kwargs()["dense_components"] == ("edit",)
    custom = spec.replace(shaping=PotentialShaping(0.99, potential=lambda c, i: 0.0))
    assert custom.env_kwargs()["dense_components"] is True
    assert spec.replace(dense_components=True).env_kwargs()["dense_components"] is True
    with pytest.raises(ValueError, match="dense_components"):
        spec.replace(dense_components="yes")


@pytest.mark.parametrize("kind", ["batched", "dummy"])
def test_shaped_rewards_are_bit_identical_too(kind: str) -> None:
    """Shaping on ``edit``: the lazy env computes ``edit`` every step and the rest at the
    end; the shaped rewards equal the dense schedule's."""
    shaping = PotentialShaping(0.99, potential="edit")
    lazy = UniGenSpec(task="unified", size=SIZE, horizon=3, device="cpu", shaping=shaping)
    r_lazy, raw_lazy = _paid(lazy, kind)
    r_dense, raw_dense = _paid(lazy.replace(dense_components=True), kind)
    assert raw_lazy and np.any(r_lazy[:-1] != 0.0)  # shaping pays between the ends
    np.testing.assert_array_equal(r_lazy, r_dense)
    assert raw_lazy == raw_dense


def test_step_infos_hold_each_episodes_numbers_in_their_own_copies() -> None:
    """The infos of one vector step are built from arrays read once for all episodes: each
    still holds its own episode's values (Python numbers; arrays copied, not shared)."""
    venv = UniGenVecEnv(5, "unified", size=SIZE, horizon=3, seed=2, device="cpu")
    venv.reset()
    core = venv.core
    rng = np.random.default_rng(0)
    seen_final = seen_running = False
    # Two steps: episode 0 stops on each (the core itself never restarts an episode), the
    # others draw and fill, short of the horizon (3).
    for row in ([OP_STOP, OP_STROKE, OP_FILL, OP_STROKE, OP_FILL], [OP_STOP] + [OP_FILL] * 4):
        ops = np.asarray(row)
        params = rng.uniform(-1, 1, size=(5, NUM_PARAMS)).astype(np.float32)
        res = core.step(ops, params)
        for i, info in enumerate(res.infos):
            assert info["prompt"] == core.tasks[i].prompt.text
            assert type(info["step"]) is int and info["step"] == core.steps[i]
            assert type(info["temporal_min"]) is float
            assert info["temporal_min"] == core.temporal_min[i]
            assert type(info["reward_is_final"]) is bool
            assert info["sub_metrics"]
            assert all(type(v) is float and not np.isnan(v) for v in info["sub_metrics"].values())
            np.testing.assert_array_equal(info["op_mask"], core.op_masks()[i])
            assert info["reward_is_final"] == (i == 0)
            if info["reward_is_final"]:
                seen_final = True
                np.testing.assert_array_equal(info["state_components"], core.state_components[i])
                assert not np.shares_memory(info["state_components"], core.state_components)
            else:
                seen_running = True
                assert "state_components" not in info
        masks = [info["op_mask"] for info in res.infos]
        assert not any(np.shares_memory(a, b) for a in masks for b in masks if a is not b)
    assert seen_final and seen_running
