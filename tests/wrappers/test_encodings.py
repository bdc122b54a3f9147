"""MultiDiscrete and Discrete action encodings: round trips, masks, settings, the factory."""

from __future__ import annotations

import inspect
import re

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.env_util import make_vec_env

from unigen_sb3 import make_unigen_env
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_ATTRIBUTE, OPS
from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.wrappers.actions import (
    ACTION_ENCODINGS,
    DEFAULT_BINS,
    ENCODINGS,
    BoxCodec,
    DiscreteCodec,
    HybridToDiscreteWrapper,
    HybridToMultiDiscreteWrapper,
    MultiDiscreteCodec,
    default_action_library,
    make_codec,
    wrap_hybrid_action,
)

finite = st.floats(-1.0, 1.0, allow_nan=False, width=32)
SMALL = {"size": 36, "horizon": 4}


def _hybrid(op: int, params: list[float] | np.ndarray) -> dict:
    return {"op": op, "params": np.asarray(params, np.float32)}


# ----------------------------------------------------------------------------- MultiDiscrete
@settings(max_examples=300, deadline=None)
@given(
    op=st.integers(0, NUM_OPS - 1),
    params=st.lists(finite, min_size=NUM_PARAMS, max_size=NUM_PARAMS),
    bins=st.one_of(
        st.integers(1, 40), st.lists(st.integers(1, 40), min_size=NUM_PARAMS, max_size=NUM_PARAMS)
    ),
)
def test_multidiscrete_round_trip_within_half_a_bin(
    op: int, params: list[float], bins: int | list[int]
) -> None:
    codec = MultiDiscreteCodec(NUM_OPS, NUM_PARAMS, bins=bins)
    flat = codec.encode(_hybrid(op, params))
    assert codec.space.contains(flat)
    decoded = codec.decode(flat)
    assert decoded["op"] == op
    per_param = np.full(NUM_PARAMS, bins) if isinstance(bins, int) else np.array(bins)
    # Half a grid step of linspace(-1, 1, b) is 1 / (b - 1); a single bin decodes to 0.
    half_step = np.where(per_param > 1, 1.0 / np.maximum(per_param - 1, 1), 1.0)
    err = np.abs(decoded["params"] - np.asarray(params, np.float32))
    assert np.all(err <= half_step + 1e-6), (err, half_step)
    np.testing.assert_allclose(codec.max_error(), half_step)
    # And the discrete side round-trips exactly.
    np.testing.assert_array_equal(codec.encode(decoded), flat)


def test_multidiscrete_grid_is_documented_linspace() -> None:
    codec = MultiDiscreteCodec(NUM_OPS, NUM_PARAMS)
    assert codec.space.nvec.tolist() == [NUM_OPS] + [DEFAULT_BINS] * NUM_PARAMS
    np.testing.assert_allclose(codec.grid(0), np.linspace(-1, 1, DEFAULT_BINS), atol=1e-7)
    assert MultiDiscreteCodec(2, 1, bins=1).grid(0).tolist() == [0.0]
    # Ends are reachable: full intensity and pure colours.
    flat = codec.encode(_hybrid(1, [1.0] * NUM_PARAMS))
    assert codec.decode(flat)["params"].tolist() == [1.0] * NUM_PARAMS
    # Out-of-range params are clipped before quantizing.
    assert codec.encode(_hybrid(1, [5.0] + [-7.0] * 7)).tolist() == [1, 10] + [0] * 7
    # All three region bins (p7) are hit by the default grid.
    region_values = codec.grid(7)
    assert (region_values < -1 / 3).any() and (np.abs(region_values) < 1 / 3).any()
    assert (region_values >= 1 / 3).any()


def test_multidiscrete_decode_rejects_bad_actions() -> None:
    codec = MultiDiscreteCodec(3, 2, bins=4)
    with pytest.raises(ValueError, match="shape"):
        codec.decode(np.array([0, 1]))
    with pytest.raises(ValueError, match="index 2"):
        codec.decode(np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="integers"):
        codec.decode(np.array([0.5, 1, 1]))
    assert codec.decode(np.array([2.0, 0.0, 3.0]))["params"].tolist() == [-1.0, 1.0]


def test_multidiscrete_masks_layout() -> None:
    codec = MultiDiscreteCodec(3, 2, bins=(4, 5))
    mask = codec.action_masks(np.array([True, False, True]))
    assert mask.dtype == bool and mask.shape == (3 + 4 + 5,)
    assert mask.tolist() == [True, False, True] + [True] * 9
    batched = codec.action_masks(np.array([[1, 0, 1], [0, 1, 1]]))
    assert batched.shape == (2, 12) and batched[1, :3].tolist() == [False, True, True]
    with pytest.raises(ValueError, match="op_mask"):
        codec.action_masks(np.ones(4, bool))


# ----------------------------------------------------------------------------- Discrete
def test_default_library_is_the_documented_one() -> None:
    lib = default_action_library()
    counts = {op: sum(1 for name, _ in lib if name == op) for op in OPS}
    assert counts == {
        "stop": 1,
        "stroke": 0,
        "refine": 2,
        "attribute": 6,
        "style": 8,
        "fill": 14 + 432,  # palette and backgrounds on the mask; shapes x sizes x cells x colours
    }
    assert len(lib) == 463 and all(len(p) == NUM_PARAMS for _, p in lib)
    codec = DiscreteCodec(NUM_OPS, NUM_PARAMS)
    assert codec.space.n == 463
    # every entry decodes to its preset and encodes back to itself
    for i in range(codec.space.n):
        decoded = codec.decode(i)
        assert OPS[decoded["op"]] == lib[i][0]
        np.testing.assert_allclose(decoded["params"], lib[i][1], atol=1e-7)
        assert int(codec.encode(decoded)) == i


def test_discrete_encode_picks_nearest_preset_of_the_same_op() -> None:
    lib = [("stroke", [-1.0, 0.0]), ("stroke", [1.0, 0.0]), ("fill", [1.0, 1.0]), (0, [0, 0])]
    codec = DiscreteCodec(NUM_OPS, 2, library=lib)
    assert int(codec.encode(_hybrid(1, [0.6, 0.9]))) == 1
    assert int(codec.encode(_hybrid(1, [-0.2, 0.9]))) == 0
    assert int(codec.encode(_hybrid(5, [-1.0, -1.0]))) == 2  # only fill entry, however far
    assert int(codec.encode(_hybrid(0, [0.3, 0.3]))) == 3  # op given as an id
    with pytest.raises(ValueError, match="'refine' has no entry"):
        codec.encode(_hybrid(2, [0.0, 0.0]))
    with pytest.raises(ValueError, match="out of range"):
        codec.decode(4)
    assert codec.label(2) == "fill(1, 1)"


def test_discrete_masks_follow_ops() -> None:
    codec = DiscreteCodec(NUM_OPS, NUM_PARAMS)
    op_mask = np.ones(NUM_OPS, bool)
    op_mask[OP_ATTRIBUTE] = False
    mask = codec.action_masks(op_mask)
    assert mask.shape == (463,) and mask.dtype == bool
    assert np.array_equal(~mask, codec.ops == OP_ATTRIBUTE) and (~mask).sum() == 6


# ----------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize(
    ("encoding", "options", "match"),
    [
        ("multidiscrete", {"bins": 0}, r"bins\[0\]=0"),
        ("multidiscrete", {"bins": [5] * 7}, "bins has 7 entries"),
        ("multidiscrete", {"bins": [5, 5, 5, -1, 5, 5, 5, 5]}, r"bins\[3\]=-1"),
        ("multidiscrete", {"bins": 2.5}, "bins must be an int"),
        ("multidiscrete", {"library": []}, r"unknown option\(s\) \['library'\]"),
        ("discrete", {"library": [("paint", [0.0] * 8)]}, r"library\[0\]: unknown op name 'paint'"),
        ("discrete", {"library": [("stop", [0.0] * 8), ("fill", [0.0] * 3)]}, r"library\[1\]"),
        ("discrete", {"library": [("fill", [0.0] * 9)]}, "preset has 9 parameters, expected 8"),
        ("discrete", {"library": [("fill", [2.0] * 8)]}, r"in \[-1, 1\]"),
        ("discrete", {"library": [("fill", [0.0] * 8)] * 2}, r"library\[1\] repeats library\[0\]"),
        ("discrete", {"library": [(9, [0.0] * 8)]}, "op id 9 is out of range"),
        ("discrete", {"library": []}, "non-empty"),
        ("discrete", {"library": [{"op": "fill"}]}, "keys 'op' and 'params'"),
        ("discrete", {"bins": 3}, r"unknown option\(s\) \['bins'\]"),
        ("box", {"bins": 3}, "accepted: none"),
        ("tuple", {}, "'tuple' is not one of"),
    ],
)
def test_bad_encoder_settings_name_the_setting(encoding: str, options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_codec(encoding, NUM_OPS, NUM_PARAMS, **options)


def test_default_library_needs_unigen_sizes() -> None:
    with pytest.raises(ValueError, match="pass a library"):
        DiscreteCodec(3, 2)
    codec = DiscreteCodec(3, 2, library=[(0, [0, 0]), (2, [1, -1])])
    assert codec.label(1) == "2(1, -1)"
    with pytest.raises(ValueError, match="unknown op name 'stop'"):
        DiscreteCodec(3, 2, library=[("stop", [0, 0])])


def test_make_codec_builds_each_encoding() -> None:
    assert [type(make_codec(e, NUM_OPS, NUM_PARAMS)) for e in ACTION_ENCODINGS] == [
        BoxCodec,
        MultiDiscreteCodec,
        DiscreteCodec,
    ]
    assert BoxCodec(3, 1).action_masks(np.array([1, 0, 1])).tolist() == [True, False, True]


def test_the_encodings_table_drives_the_names_the_codecs_and_the_wrappers() -> None:
    # ACTION_ENCODINGS, make_codec and wrap_hybrid_action are all read from ENCODINGS; each
    # row's wrapper builds the row's codec and takes exactly the row's options.
    assert ACTION_ENCODINGS == tuple(ENCODINGS) == ("box", "multidiscrete", "discrete")
    raw = UniGenEnv(**SMALL)
    for encoding, (codec_cls, wrapper_cls, options) in ENCODINGS.items():
        codec_params = list(inspect.signature(codec_cls).parameters)
        wrapper_params = list(inspect.signature(wrapper_cls).parameters)
        assert codec_params == ["num_ops", "num_params", *options], encoding
        assert wrapper_params == ["env", *options], encoding
        env = wrap_hybrid_action(raw, encoding)
        assert type(env) is wrapper_cls and env.unwrapped is raw
        assert type(env.get_wrapper_attr("codec")) is codec_cls


@pytest.mark.parametrize("encoding", ACTION_ENCODINGS)
def test_encode_refuses_a_non_integer_op_and_non_finite_params(encoding: str) -> None:
    # The Box codec passed NaN parameters through, and every codec truncated op=2.7 to 2.
    codec = make_codec(encoding, NUM_OPS, NUM_PARAMS)
    params = np.zeros(NUM_PARAMS, np.float32)
    for op in (2.7, True, "2", None, [1, 2], float("nan")):
        with pytest.raises(ValueError, match=re.escape(f"op must be an integer, got {op!r}")):
            codec.encode({"op": op, "params": params})
    with pytest.raises(ValueError, match="params contains NaN or inf"):
        codec.encode({"op": 1, "params": np.full(NUM_PARAMS, np.nan, np.float32)})
    # Integer-valued floats and numpy integers are ops (as decode_batch accepts them).
    for op in (2, 2.0, np.int64(2), np.array([2])):
        assert codec.decode(codec.encode({"op": op, "params": params}))["op"] == 2


# ----------------------------------------------------------------------------- the env stack
@pytest.mark.parametrize("task", ["generate", "edit"])
@pytest.mark.parametrize("obs", ["image", "dict"])
def test_masks_reach_maskable_ppo_through_the_stack(task: str, obs: str) -> None:
    vec = make_vec_env(
        make_unigen_env,
        n_envs=2,
        seed=0,
        env_kwargs={"task": task, "action": "multidiscrete", "obs": obs, **SMALL},
    )
    vec.reset()
    assert is_masking_supported(vec)
    masks = get_action_masks(vec)
    assert masks.shape == (2, NUM_OPS + DEFAULT_BINS * NUM_PARAMS) and masks.dtype == bool
    # the attribute op is valid only when editing; every parameter bin always is
    assert masks[:, OP_ATTRIBUTE].tolist() == [task == "edit"] * 2
    assert masks[:, NUM_OPS:].all() and masks[:, :NUM_OPS].sum() >= NUM_OPS - 1
    vec.close()


def test_gym_make_passes_action_and_obs_kwargs() -> None:
    env = gym.make("UniGen/Generate-v0", action="discrete", obs="dict", seed=0, **SMALL)
    assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n == 463
    assert isinstance(env.observation_space, gym.spaces.Dict)
    env.reset()
    mask = env.get_wrapper_attr("action_masks")()
    codec = env.get_wrapper_attr("codec")
    assert np.array_equal(mask, codec.ops != OP_ATTRIBUTE)
    md = gym.make("UniGen/Edit-v0", action="multidiscrete", action_options={"bins": 3}, **SMALL)
    assert md.action_space.nvec.tolist() == [NUM_OPS] + [3] * NUM_PARAMS
    md.reset(seed=0)
    assert md.get_wrapper_attr("action_masks")().all()


def test_wrappers_step_the_env_with_the_decoded_action() -> None:
    env = make_unigen_env(task="edit", action="multidiscrete", seed=0, **SMALL)
    assert isinstance(env.get_wrapper_attr("codec"), MultiDiscreteCodec)
    env.reset()
    # stop as op ends the episode: the decoded op reached the raw env
    _, reward, terminated, _, info = env.step(np.array([0] + [5] * NUM_PARAMS))
    assert terminated and info["reward_is_final"] and isinstance(reward, float)
    denv = make_unigen_env(task="edit", action="discrete", seed=0, **SMALL)
    denv.reset()
    _, _, terminated, truncated, _ = denv.step(1)  # a fill: the episode goes on
    assert not terminated and not truncated
    assert denv.unwrapped.core.steps[0] == 1


def test_wrapper_without_env_masks_marks_everything_valid() -> None:
    from unigen_sb3.envs.env import action_space as hybrid_space

    class NoMaskEnv(gym.Env):
        observation_space = gym.spaces.Box(0, 1, (1,))
        action_space = hybrid_space()

    wrapped = HybridToDiscreteWrapper(NoMaskEnv())
    assert wrapped.action_masks().all() and wrapped.action_masks().shape == (463,)
    md = HybridToMultiDiscreteWrapper(NoMaskEnv(), bins=[2] * NUM_PARAMS)
    assert md.action_masks().shape == (NUM_OPS + 2 * NUM_PARAMS,)
    assert md.revert_action(md.action(np.array([3, 0, 1, 0, 1, 0, 1, 0, 1]))).tolist() == [
        3,
        0,
        1,
        0,
        1,
        0,
        1,
        0,
        1,
    ]


def test_factory_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="bins"):
        make_unigen_env(action="multidiscrete", action_options={"bins": 0}, **SMALL)
    with pytest.raises(ValueError, match="action='tuple'"):
        make_unigen_env(action="tuple", **SMALL)


@pytest.mark.parametrize("encoding", ["box", "multidiscrete", "discrete"])
def test_decode_batch_equals_decode_row_by_row(encoding: str) -> None:
    codec = make_codec(encoding, NUM_OPS, NUM_PARAMS)
    codec.space.seed(3)
    flat = np.stack([codec.space.sample() for _ in range(9)])
    ops, params = codec.decode_batch(flat)
    assert ops.dtype == np.int64 and ops.shape == (9,)
    assert params.dtype == np.float32 and params.shape == (9, NUM_PARAMS)
    for i, row in enumerate(flat):
        one = codec.decode(row)
        assert ops[i] == one["op"]
        np.testing.assert_array_equal(params[i], one["params"])


def test_decode_batch_names_the_bad_row() -> None:
    box = make_codec("box", NUM_OPS, NUM_PARAMS)
    flat = np.zeros((4, NUM_OPS + NUM_PARAMS), dtype=np.float32)
    flat[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"actions\[2\] contains NaN or inf"):
        box.decode_batch(flat)
    with pytest.raises(ValueError, match=r"actions must have shape \(N, 14\)"):
        box.decode_batch(flat[:, :3])
    md = make_codec("multidiscrete", NUM_OPS, NUM_PARAMS)
    rows = np.zeros((3, 1 + NUM_PARAMS), dtype=np.int64)
    rows[1, 4] = 99
    with pytest.raises(ValueError, match=r"actions\[1\] = .* out of range at index 4"):
        md.decode_batch(rows)
    with pytest.raises(ValueError, match=r"actions\[0\] must hold integers"):
        md.decode_batch(np.full((2, 1 + NUM_PARAMS), 0.5))
    disc = make_codec("discrete", NUM_OPS, NUM_PARAMS)
    with pytest.raises(ValueError, match=r"actions\[1\] = -1 is out of range"):
        disc.decode_batch(np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"actions must have shape \(N,\) with N >= 1"):
        disc.decode_batch(np.zeros((2, 3), dtype=np.int64))
