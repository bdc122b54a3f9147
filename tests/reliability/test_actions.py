"""Finite out-of-range params are clipped; bool and complex actions are refused."""

from __future__ import annotations

import numpy as np
import pytest

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS
from unigen_sb3.envs.env import check_hybrid_action, check_hybrid_actions
from unigen_sb3.wrappers.actions.codecs import BoxCodec, MultiDiscreteCodec


def test_finite_params_beyond_float32_are_clipped() -> None:
    params = np.array([1e39, -1e39, 1e300, 0.5, -3.0, 0.0, 2.0, -0.25])
    op, clipped = check_hybrid_action({"op": 1, "params": params})
    assert op == 1 and clipped.dtype == np.float32
    assert clipped.tolist() == [1.0, -1.0, 1.0, 0.5, -1.0, 0.0, 1.0, -0.25]
    ops, batch = check_hybrid_actions({"op": np.array([1, 2]), "params": np.stack([params] * 2)}, 2)
    assert np.all(np.abs(batch) <= 1) and batch[0, 0] == 1.0
    codec = BoxCodec(NUM_OPS, NUM_PARAMS)
    flat = np.concatenate([np.full(NUM_OPS, -1.0), params])
    flat[2] = 1e39
    decoded = codec.decode(flat)
    assert decoded["op"] == 2 and decoded["params"][0] == 1.0
    ops, dec_params = codec.decode_batch(np.stack([flat, flat]))
    assert ops.tolist() == [2, 2] and np.isfinite(dec_params).all()
    assert codec.encode({"op": 0, "params": params})[NUM_OPS] == 1.0
    assert MultiDiscreteCodec(NUM_OPS, NUM_PARAMS).encode({"op": 0, "params": params})[1] == 10


@pytest.mark.parametrize(
    "action",
    [
        {"op": 1, "params": np.ones(NUM_PARAMS, dtype=bool)},
        {"op": 1, "params": np.zeros(NUM_PARAMS, dtype=complex)},
        {"op": 1, "params": [True] + [0.0] * (NUM_PARAMS - 1)},
        {"op": True, "params": np.zeros(NUM_PARAMS)},
        {"op": [True], "params": np.zeros(NUM_PARAMS)},
        {"op": np.bool_(True), "params": np.zeros(NUM_PARAMS)},
    ],
)
def test_bool_and_complex_single_actions_are_refused(action: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=r"bool|complex|integer|numbers"):
        check_hybrid_action(action)


@pytest.mark.parametrize(
    "action",
    [
        {"op": [True, 2], "params": np.zeros((2, NUM_PARAMS))},
        {"op": np.array([True, False]), "params": np.zeros((2, NUM_PARAMS))},
        {"op": [1, 2], "params": np.zeros((2, NUM_PARAMS), dtype=bool)},
        {"op": [1, 2], "params": np.zeros((2, NUM_PARAMS)) + 1j},
        [{"op": True, "params": np.zeros(NUM_PARAMS)}, {"op": 1, "params": np.zeros(NUM_PARAMS)}],
        [{"op": 1, "params": [False] * NUM_PARAMS}, {"op": 1, "params": np.zeros(NUM_PARAMS)}],
    ],
)
def test_bool_and_complex_batches_are_refused(action: object) -> None:
    with pytest.raises(ValueError, match=r"bool|complex|integer|numbers"):
        check_hybrid_actions(action, 2)


def test_box_codec_refuses_bool_and_complex() -> None:
    codec = BoxCodec(NUM_OPS, NUM_PARAMS)
    size = NUM_OPS + NUM_PARAMS
    for bad in (np.ones(size, dtype=bool), np.zeros(size, dtype=complex)):
        with pytest.raises(ValueError, match=r"bool|complex"):
            codec.decode(bad)
        with pytest.raises(ValueError, match=r"bool|complex"):
            codec.decode_batch(bad[None])
