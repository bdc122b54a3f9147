"""``UniGenCore.copy_episode_from``: a copied episode steps exactly like its original.

Rewards and sub-metrics are compared at 1e-5 absolute (as in test_vec_env.py: a batch of
another size goes through the perceptual network's convolutions with other oneDNN kernels,
whose float sums differ in the last bits); canvases and observations must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unigen_sb3.envs.canvas import NUM_PARAMS, OP_FILL, OP_STOP
from unigen_sb3.envs.core import UniGenCore
from unigen_sb3.envs.vec_env import UniGenVecEnv

ATOL = 1e-5


def _population(source: UniGenCore, n: int) -> UniGenCore:
    return UniGenCore(
        n,
        size=source.size,
        horizon=source.horizon,
        device=source.device,
        rewards=source.rewards,
        step_components=source.step_components,
    )


@pytest.mark.parametrize("dense", [True, False])
def test_a_copied_episode_steps_like_the_original(dense: bool) -> None:
    venv = UniGenVecEnv(
        3, "unified", size=36, horizon=4, seed=3, edit_fraction=0.5, dense_components=dense
    )
    venv.reset()
    rng = np.random.default_rng(0)
    first = {"op": np.full(3, OP_FILL), "params": rng.uniform(-1, 1, (3, NUM_PARAMS))}
    venv.step(first)  # mid-episode: steps, recent, temporal_min and caches are not fresh
    source = venv.core
    source.extra_state = torch.arange(3.0)  # an attribute added later is copied too
    source.lazy_cache = None  # a cache the source has not computed: not kept stale here
    pop = _population(source, 4)
    pop.lazy_cache = torch.zeros(4, 2)  # type: ignore[attr-defined]
    pop.copy_episode_from(source, 1, [0, 2, 3])
    assert pop.lazy_cache is None  # type: ignore[attr-defined]
    assert pop.tasks[0] is source.tasks[1] and pop.tasks[1] is None
    pop.copy_episode_from(source, 0, [1])
    assert torch.equal(pop.extra_state, torch.tensor([1.0, 0.0, 1.0, 1.0]))  # type: ignore[attr-defined]
    for row in (0, 2, 3):
        assert torch.equal(pop.canvas[row], source.canvas[1])
        for mine, theirs in zip(
            pop.canvas_features or [], source.canvas_features or [], strict=True
        ):
            assert torch.equal(mine[row], theirs[1])
    ops = np.array([OP_FILL, OP_STOP, OP_FILL])
    params = rng.uniform(-1, 1, (3, NUM_PARAMS)).astype(np.float32)
    for op in (OP_FILL, OP_STOP):  # a change, then the end of the episode (reward paid)
        ops[1] = op
        mine = pop.step(np.full(4, op), np.repeat(params[1:2], 4, axis=0))
        theirs = source.step(ops, params)
        obs_pop, obs_src = pop.observations([2]), source.observations([1])
        for key in obs_src:
            np.testing.assert_array_equal(obs_pop[key][0], obs_src[key][0])
        np.testing.assert_allclose(mine.reward[2], theirs.reward[1], atol=ATOL)
        assert (mine.terminated[2], mine.truncated[2]) == (
            theirs.terminated[1],
            theirs.truncated[1],
        )
        a, b = mine.infos[2], theirs.infos[1]
        assert a["prompt"] == b["prompt"] and a["step"] == b["step"]
        assert ("state_components" in a) == ("state_components" in b)
        if "state_components" in b:  # every step when dense; where the reward is paid when lazy
            np.testing.assert_allclose(a["state_components"], b["state_components"], atol=ATOL)
        assert a["temporal_min"] == pytest.approx(b["temporal_min"], abs=ATOL)
        for key, value in b["sub_metrics"].items():
            assert a["sub_metrics"][key] == pytest.approx(value, abs=ATOL), key
    assert theirs.terminated[1] and theirs.reward[1].any()  # the paid reward was compared


def test_copy_refuses_other_settings_and_bad_rows() -> None:
    venv = UniGenVecEnv(2, "edit", size=36, horizon=3, seed=0)
    venv.reset()
    dense = UniGenCore(2, size=36, horizon=3, device=venv.device, rewards=venv.rewards)
    with pytest.raises(ValueError, match="lazily scoring source"):
        dense.copy_episode_from(venv.core, 0, [0])
    other = UniGenCore(2, size=36, horizon=5, device=venv.device, rewards=venv.rewards)
    with pytest.raises(ValueError, match=r"horizon=3.*this one 5"):
        other.copy_episode_from(venv.core, 0, [0])
    pop = _population(venv.core, 2)
    with pytest.raises(ValueError, match=r"row=2 must be an episode of the source, in \[0, 2\)"):
        pop.copy_episode_from(venv.core, 2, [0])
    with pytest.raises(ValueError, match=r"rows=\[5\] must be a non-empty list"):
        pop.copy_episode_from(venv.core, 0, [5])
