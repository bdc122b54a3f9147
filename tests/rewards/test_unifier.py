"""Tests for the reward unifier."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from unigen_sb3.rewards.unifier import (
    COMPONENT_NAMES,
    DEFAULT_WEIGHTS,
    RewardUnifier,
    UnifiedReward,
)


def test_defaults() -> None:
    assert COMPONENT_NAMES == ("quality", "edit", "consistency")
    assert DEFAULT_WEIGHTS == {"quality": 0.4, "edit": 0.4, "consistency": 0.2}
    assert RewardUnifier().weights == DEFAULT_WEIGHTS
    assert RewardUnifier().ablated == ()


def test_single_vector_matches_reference_formula() -> None:
    unifier = RewardUnifier(0.5, 0.3, 0.2, low=(0, -1, 0), high=(1, 1, 10))
    out = unifier(np.array([0.8, 0.0, 2.5], dtype=np.float32))
    assert isinstance(out, UnifiedReward)
    normalized = {"quality": 0.8, "edit": 0.5, "consistency": 0.25}
    for name, value in normalized.items():
        assert isinstance(out.components[name], float)
        assert out.components[name] == pytest.approx(value, abs=1e-7)
        assert out.contributions[name] == pytest.approx(out.weights[name] * value, abs=1e-7)
    assert isinstance(out.total, float)
    assert out.total == pytest.approx(0.5 * 0.8 + 0.3 * 0.5 + 0.2 * 0.25, abs=1e-7)
    assert out.raw == pytest.approx({"quality": 0.8, "edit": 0.0, "consistency": 2.5})


def test_batch_matches_rowwise_and_stays_in_unit_interval() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(-0.5, 1.5, size=(50, 3))
    unifier = RewardUnifier(0.2, 0.5, 0.3)
    out = unifier(raw)
    assert isinstance(out.total, np.ndarray) and out.total.shape == (50,)
    assert np.all((out.total >= 0) & (out.total <= 1))
    reference = np.clip(raw, 0, 1) @ np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(out.total, reference, atol=1e-12)
    np.testing.assert_allclose(sum(out.contributions.values()), out.total, atol=1e-12)
    for i in (0, 17, 49):
        row = unifier(raw[i])
        assert row.total == pytest.approx(float(out.total[i]), abs=1e-12)


def test_torch_input() -> None:
    unifier = RewardUnifier()
    x = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    np.testing.assert_allclose(unifier(x).total, unifier(x.numpy()).total)


def test_weight_sum_message_names_every_weight_and_sum() -> None:
    with pytest.raises(ValueError) as err:
        RewardUnifier(0.9, 0.9, 0.9)
    assert "w_quality=0.9, w_edit=0.9, w_consistency=0.9 sum to 2.7;" in str(err.value)
    assert "normalize_weights=True" in str(err.value)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ((-0.1, 0.6, 0.5), "w_quality=-0.1"),
        ((0.5, float("nan"), 0.5), "w_edit=nan"),
        ((0.5, 0.5, float("inf")), "w_consistency=inf"),
        ((0.3, 0.3, 0.3), "sum to 0.9"),
    ],
)
def test_invalid_weights(weights: tuple[float, float, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RewardUnifier(*weights)


def test_sum_tolerance() -> None:
    RewardUnifier(0.4, 0.4, 0.2 + 5e-7)  # within 1e-6: accepted
    with pytest.raises(ValueError, match="sum to"):
        RewardUnifier(0.4, 0.4, 0.2 + 5e-6)


def test_normalize_weights_rescales() -> None:
    unifier = RewardUnifier(2.0, 1.0, 1.0, normalize_weights=True)
    assert unifier.weights == pytest.approx({"quality": 0.5, "edit": 0.25, "consistency": 0.25})
    with pytest.raises(ValueError, match="w_edit=-1"):
        RewardUnifier(1.0, -1.0, 1.0, normalize_weights=True)
    with pytest.raises(ValueError, match="positive sum"):
        RewardUnifier(0.0, 0.0, 0.0, normalize_weights=True)


def test_set_weights_partial_and_atomic() -> None:
    unifier = RewardUnifier()
    unifier.set_weights(w_quality=0.6, w_edit=0.2)
    assert unifier.weights == {"quality": 0.6, "edit": 0.2, "consistency": 0.2}
    with pytest.raises(
        ValueError, match=r"w_quality=0\.9, w_edit=0\.2, w_consistency=0\.2 sum to 1\.3"
    ):
        unifier.set_weights(w_quality=0.9)
    assert unifier.weights == {"quality": 0.6, "edit": 0.2, "consistency": 0.2}
    assert unifier([1.0, 0.0, 0.0]).total == pytest.approx(0.6)


def test_ablation() -> None:
    unifier = RewardUnifier(0.0, 1.0, 0.0)
    out = unifier([1.0, 0.3, 1.0])
    assert out.ablated == ("quality", "consistency")
    assert unifier.ablated == ("quality", "consistency")
    assert out.contributions["quality"] == 0.0
    assert out.contributions["consistency"] == 0.0
    assert out.components["quality"] == 1.0  # still reported, just not weighted
    assert out.total == pytest.approx(0.3)


def test_invalid_raw() -> None:
    unifier = RewardUnifier()
    with pytest.raises(ValueError, match="consistency=nan"):
        unifier([0.1, 0.2, float("nan")])
    with pytest.raises(ValueError, match="expected last dimension 3"):
        unifier([0.1, 0.2])


def test_running_update_flag() -> None:
    unifier = RewardUnifier(normalization="running")
    unifier([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], update=True)
    assert unifier.normalizer.state_dict()["count"] == 2
    out = unifier([2.0, 3.0, 4.0], update=False)
    assert unifier.normalizer.state_dict()["count"] == 2
    assert out.total == pytest.approx(0.5)  # every z-score is 0 -> sigmoid 0.5


def test_running_updates_before_normalizing() -> None:
    # With update=True the batch's own statistics are used: a constant batch maps to 0.5.
    out = RewardUnifier(normalization="running")(np.full((4, 3), 7.0))
    np.testing.assert_allclose(out.total, 0.5)


def test_state_dict_roundtrip() -> None:
    rng = np.random.default_rng(4)
    unifier = RewardUnifier(0.1, 0.6, 0.3, normalization="running")
    unifier(rng.normal(size=(30, 3)))
    restored = RewardUnifier(normalization="running")
    restored.load_state_dict(pickle.loads(pickle.dumps(unifier.state_dict())))
    assert restored.weights == unifier.weights
    x = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(restored(x, update=False).total, unifier(x, update=False).total)
    with pytest.raises(ValueError, match="normalization='running'"):
        RewardUnifier().load_state_dict(unifier.state_dict())
