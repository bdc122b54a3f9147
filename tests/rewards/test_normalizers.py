"""Tests for the reward-component normalizers."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unigen_sb3.rewards.normalizers import (
    COMPONENT_NAMES,
    BoundedNormalizer,
    Normalizer,
    RunningNormalizer,
    make_normalizer,
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------- bounded


def test_bounded_maps_declared_range_affinely() -> None:
    norm = BoundedNormalizer(low=[0.0, -1.0, 10.0], high=[1.0, 1.0, 20.0])
    out = norm([0.25, 0.0, 15.0])
    np.testing.assert_allclose(out, [0.25, 0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(norm([0.0, -1.0, 10.0]), [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(norm([1.0, 1.0, 20.0]), [1, 1, 1], atol=1e-12)


def test_bounded_clips_outside_range() -> None:
    norm = BoundedNormalizer(low=[0, 0, 0], high=[1, 1, 1])
    np.testing.assert_allclose(norm([-3.0, 0.5, 7.0]), [0.0, 0.5, 1.0])


def test_bounded_batch_equals_rowwise() -> None:
    rng = np.random.default_rng(0)
    norm = BoundedNormalizer(low=[-2, 0, 1], high=[2, 5, 3])
    batch = rng.uniform(-3, 6, size=(7, 3))
    out = norm(batch)
    assert out.shape == (7, 3)
    for row, expected in zip(batch, out, strict=True):
        np.testing.assert_allclose(norm(row), expected, atol=1e-15)


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [
        ([0, 0, 0], [1, 0, 1], "edit"),
        ([0, 0, 0], [1, 1, np.inf], "consistency"),
        (
            [0, 0],
            [1, 1],
            r"low and high need 3 entries \(quality, edit, consistency\), got 2 and 2",
        ),
    ],
)
def test_bounded_rejects_bad_bounds(low: list, high: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BoundedNormalizer(low=low, high=high)


# ---------------------------------------------------------------- running


def test_running_statistics_match_numpy_over_uneven_batches() -> None:
    rng = np.random.default_rng(1)
    norm = RunningNormalizer(3)
    chunks = [rng.normal(loc=[1, -2, 50], scale=[0.5, 3, 10], size=(n, 3)) for n in (1, 5, 2, 40)]
    chunks.append(rng.normal(size=3))  # a single (K,) vector
    for chunk in chunks:
        norm.update(chunk)
    everything = np.vstack([c.reshape(-1, 3) for c in chunks])
    assert norm.count == everything.shape[0]
    np.testing.assert_allclose(norm.mean, everything.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(norm.var, everything.var(axis=0), rtol=1e-10, atol=1e-12)


def test_running_output_is_sigmoid_of_clipped_zscore() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(loc=3.0, scale=2.0, size=(100, 3))
    norm = RunningNormalizer(3, epsilon=1e-8, clip=2.0)
    norm.update(data)
    x = np.array([[3.0, 3.0, 3.0], [100.0, -100.0, 4.0]])
    z = (x - data.mean(axis=0)) / np.sqrt(data.var(axis=0) + 1e-8)
    expected = _sigmoid(np.clip(z, -2.0, 2.0))
    np.testing.assert_allclose(norm(x), expected, rtol=1e-10)
    # Clipping bounds an outlier's effect at sigmoid(clip).
    assert norm(x)[1, 0] == pytest.approx(_sigmoid(np.array(2.0)))


def test_running_call_does_not_update() -> None:
    norm = RunningNormalizer(3)
    norm.update([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    before = norm.state_dict()
    norm([10.0, 10.0, 10.0])
    assert norm.state_dict() == before


def test_running_names_default_and_custom() -> None:
    assert RunningNormalizer(3).names == COMPONENT_NAMES
    assert RunningNormalizer(2).names == ("component_0", "component_1")
    with pytest.raises(ValueError, match="n must be a positive int"):
        RunningNormalizer(0)


def test_running_state_roundtrip_pickle_and_json() -> None:
    rng = np.random.default_rng(3)
    norm = RunningNormalizer(3, clip=3.0)
    norm.update(rng.normal(size=(20, 3)))
    state = norm.state_dict()
    json.dumps(state)  # plain Python values only
    restored = RunningNormalizer(3)
    restored.load_state_dict(pickle.loads(pickle.dumps(state)))
    x = rng.normal(size=(4, 3)) * 3
    np.testing.assert_array_equal(restored(x), norm(x))
    assert restored.clip == 3.0
    # Both continue identically.
    more = rng.normal(size=(6, 3))
    norm.update(more)
    restored.update(more)
    np.testing.assert_array_equal(restored(x), norm(x))


def test_load_state_dict_rejects_foreign_state() -> None:
    bounded = BoundedNormalizer([0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="'bounded' normalizer, this one is 'running'"):
        RunningNormalizer(3).load_state_dict(bounded.state_dict())
    bad = RunningNormalizer(3).state_dict()
    bad["var"] = [1.0, -1.0, 1.0]
    with pytest.raises(ValueError, match="malformed"):
        RunningNormalizer(3).load_state_dict(bad)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epsilon", -1.0, "state epsilon must be a positive finite number, got -1.0"),
        ("clip", -5.0, "state clip must be a positive finite number, got -5.0"),
        ("clip", float("nan"), "state clip must be a positive finite number, got nan"),
        ("count", 2.5, "state count must be an int, got 2.5"),
    ],
)
def test_load_state_dict_refuses_bad_settings_and_keeps_its_state(key, value, message) -> None:
    # A checkpoint with a negative epsilon or clip used to load and turn rewards into NaN.
    norm = RunningNormalizer(3)
    norm.update(np.array([[0.1, 0.2, 0.3], [0.5, 0.1, 0.9]]))
    before = norm.state_dict()
    bad = RunningNormalizer(3).state_dict()
    bad[key] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        norm.load_state_dict(bad)
    after = norm.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(np.asarray(after[k], dtype=object), before[k], err_msg=k)


def test_bounded_state_roundtrip() -> None:
    norm = BoundedNormalizer([0, -1, 2], [1, 1, 4])
    other = BoundedNormalizer([0, 0, 0], [1, 1, 1])
    other.load_state_dict(pickle.loads(pickle.dumps(norm.state_dict())))
    x = np.array([0.3, 0.2, 3.5])
    np.testing.assert_array_equal(other(x), norm(x))


# ---------------------------------------------------------------- shared


def _both() -> list:
    running = RunningNormalizer(3)
    running.update([[0.0, 1.0, 2.0], [1.0, 3.0, 2.5]])
    return [BoundedNormalizer([0, 0, 0], [1, 1, 1]), running]


@pytest.mark.parametrize("norm", _both(), ids=["bounded", "running"])
@pytest.mark.parametrize(
    ("x", "match"),
    [
        ([0.1, np.nan, 0.2], "edit=nan"),
        ([[0.1, 0.2, 0.3], [0.1, 0.2, np.inf]], "consistency=inf"),
        ([-np.inf, 0.2, np.nan], "quality=-inf, consistency=nan"),
    ],
)
def test_nonfinite_input_names_component(norm: Normalizer, x: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        norm(x)
    with pytest.raises(ValueError, match=match):
        norm.update(x)


@pytest.mark.parametrize("norm", _both(), ids=["bounded", "running"])
def test_wrong_length_names_expected_and_got(norm: Normalizer) -> None:
    with pytest.raises(ValueError, match=r"expected last dimension 3 .* got 4"):
        norm([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"expected last dimension 3 .* got 2"):
        norm(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(N, 3\)"):
        norm(np.zeros((2, 2, 3)))


@pytest.mark.parametrize("norm", _both(), ids=["bounded", "running"])
def test_torch_input_equals_numpy(norm: Normalizer) -> None:
    x = np.array([[0.2, 1.5, -0.3], [0.9, 0.1, 2.2]])
    np.testing.assert_array_equal(norm(torch.tensor(x)), norm(x))


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    data=arrays(np.float64, st.tuples(st.integers(1, 6), st.just(3)), elements=finite),
    query=arrays(np.float64, st.tuples(st.integers(1, 4), st.just(3)), elements=finite),
)
def test_output_always_in_unit_interval(data: np.ndarray, query: np.ndarray) -> None:
    running = RunningNormalizer(3)
    running.update(data)
    bounded = BoundedNormalizer(low=[-1.0, 0.0, 5.0], high=[1.0, 1e6, 6.0])
    for out in (running(query), bounded(query), running(query[0]), bounded(query[0])):
        assert np.all(np.isfinite(out))
        assert np.all((out >= 0.0) & (out <= 1.0))


def test_make_normalizer() -> None:
    b = make_normalizer("bounded", low=[0, 0, 0], high=[2, 2, 2])
    assert isinstance(b, BoundedNormalizer)
    np.testing.assert_allclose(b([1, 1, 1]), [0.5, 0.5, 0.5])
    assert isinstance(make_normalizer("running"), RunningNormalizer)
    with pytest.raises(ValueError, match="needs low and high"):
        make_normalizer("bounded")
    with pytest.raises(ValueError, match="'minmax' is not known; use 'bounded' or 'running'"):
        make_normalizer("minmax")  # type: ignore[arg-type]
