"""``normalization="raw_sum"``: the un-normalized baseline reward, the sum of the sub-metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unigen_sb3.configs import load_config
from unigen_sb3.envs.canvas import NUM_OPS, OP_STOP
from unigen_sb3.make import make_unigen_vec_env
from unigen_sb3.rewards.unifier import RAW_SUM_TERMS, RewardUnifier, sub_metric_sums
from unigen_sb3.spec import UniGenSpec

SUB = {
    "quality/perceptual": 0.25,
    "quality/realism": 0.5,
    "edit/accuracy": 0.125,
    "edit/localization": 0.0,
    "edit/preservation": 1.0,
    "consistency/style": 0.75,
    "consistency/temporal": 1.0,
}


def test_sums_per_component_with_the_episodes_lowest_temporal_coherence() -> None:
    assert len(RAW_SUM_TERMS) == 7 and set(RAW_SUM_TERMS) == set(SUB)
    assert sub_metric_sums(SUB).tolist() == [0.75, 1.125, 1.75]
    assert sub_metric_sums(SUB, temporal_min=0.5).tolist() == [0.75, 1.125, 1.25]
    no_realism = {k: v for k, v in SUB.items() if k != "quality/realism"}
    assert sub_metric_sums(no_realism)[0] == 0.25  # a metric the env does not compute: left out
    with pytest.raises(ValueError, match=r"needs the env's sub-metrics.*got keys \['other'\]"):
        sub_metric_sums({"other": 1.0})
    with pytest.raises(ValueError, match="edit/accuracy=nan is not finite"):
        sub_metric_sums({**SUB, "edit/accuracy": math.nan})


def test_unifier_pays_the_unweighted_sum_and_needs_the_sums() -> None:
    raw = RewardUnifier(normalization="raw_sum")
    sums = np.array([[0.75, 1.125, 1.25], [0.0, 2.0, 1.0]])
    out = raw(np.array([[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]]), sub_sums=sums)
    np.testing.assert_allclose(out.total, [3.125, 3.0])  # above 1: no normalization
    np.testing.assert_allclose(out.contributions["edit"], [1.125, 2.0])
    np.testing.assert_allclose(out.components["consistency"], [0.3, 0.0])  # still reported
    with pytest.raises(ValueError, match="sub_sums is required with normalization='raw_sum'"):
        raw([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"accepted only there.*'bounded'"):
        RewardUnifier()([0.1, 0.2, 0.3], sub_sums=[1.0, 1.0, 1.0])
    state = raw.state_dict()
    again = RewardUnifier(normalization="raw_sum")
    again.load_state_dict(state)
    assert again.state_dict() == state


def test_the_env_pays_the_sum_at_the_end_and_doing_nothing_collects_the_guards() -> None:
    venv = make_unigen_vec_env(
        2, "edit", action="box", obs="dict", size=36, horizon=2, seed=1, normalization="raw_sum"
    )
    venv.reset()
    act = np.full((2, venv.action_space.shape[0]), -1.0, dtype=np.float32)
    act[:, OP_STOP] = 1.0
    act[0, OP_STOP], act[0, NUM_OPS - 1] = -1.0, 1.0  # env 0 fills once, env 1 stops at once
    _, rewards, dones, infos = venv.step(act)
    assert dones.tolist() == [False, True] and rewards[0] == 0.0
    act[0, OP_STOP] = 1.0
    _, rewards2, dones2, infos2 = venv.step(act)
    assert dones2[0]
    for reward, info in ((rewards[1], infos[1]), (rewards2[0], infos2[0])):
        expected = sum(sub_metric_sums(info["sub_metrics"], temporal_min=info["temporal_min"]))
        assert reward == pytest.approx(expected, abs=1e-6)
        assert info["reward_total"] == pytest.approx(expected, abs=1e-6)
    # Stopping at once scores 0 on every unified component, but the raw sum pays its guards
    # (realism, preservation, temporal): the scale imbalance the unified reward removes.
    assert infos[1]["reward_components"]["edit"] == 0.0 and rewards[1] > 2.0


def test_raw_sum_is_a_training_setting_only() -> None:
    config = load_config("baseline_raw_sum")
    assert UniGenSpec.from_config(config).normalization == "raw_sum"
    assert UniGenSpec.from_config(config, evaluation=True).normalization == "bounded"
