"""Hybrid-to-Box codec and the image observation wrapper."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unigen_sb3 import UniGenEnv
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS
from unigen_sb3.envs.tasks import ATTRIBUTE_NAMES
from unigen_sb3.wrappers import BoxCodec, HybridToBoxWrapper, ImageObsWrapper

finite = st.floats(-1.0, 1.0, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(op=st.integers(0, NUM_OPS - 1), params=st.lists(finite, min_size=8, max_size=8))
def test_box_codec_round_trip(op: int, params: list[float]) -> None:
    codec = BoxCodec(NUM_OPS, NUM_PARAMS)
    action = {"op": op, "params": np.array(params, np.float32)}
    encoded = codec.encode(action)
    assert codec.space.contains(encoded)
    decoded = codec.decode(encoded)
    assert decoded["op"] == op
    np.testing.assert_array_equal(decoded["params"], action["params"])
    np.testing.assert_array_equal(codec.encode(decoded), encoded)


def test_box_codec_argmax_and_errors() -> None:
    codec = BoxCodec(3, 2)
    assert codec.decode(np.array([0.1, 0.7, 0.2, 0, 0], np.float32))["op"] == 1
    assert codec.decode(np.array([0.5, 0.5, 0.2, 0, 0], np.float32))["op"] == 0  # tie -> lowest
    with pytest.raises(ValueError, match="shape"):
        codec.decode(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        codec.decode(np.array([np.nan, 0, 0, 0, 0], np.float32))
    with pytest.raises(ValueError, match="op=3"):
        codec.encode({"op": 3, "params": np.zeros(2)})


def test_box_wrapper_rejects_non_hybrid_env() -> None:
    import gymnasium as gym

    with pytest.raises(TypeError, match="hybrid action space"):
        HybridToBoxWrapper(gym.make("CartPole-v1"))


def test_image_obs_layout() -> None:
    env = ImageObsWrapper(UniGenEnv(task="edit", seed=1))
    image, _ = env.reset()
    raw = env.unwrapped.core.observations()
    n_channels = 4 + len(ATTRIBUTE_NAMES) + 4  # no target: the agent never sees it
    assert image.shape == (n_channels, 64, 64) and image.dtype == np.uint8
    assert len(env.stacker.channel_names()) == n_channels
    assert "target_r" not in env.stacker.channel_names()
    np.testing.assert_array_equal(image[:3], raw["canvas"][0])
    np.testing.assert_array_equal(image[3], raw["mask"][0, 0])
    # attributes in [-1, 1] -> round(255 * (v + 1) / 2), constant planes
    attrs = raw["attributes"][0]
    expected = np.rint(255 * (attrs + 1) / 2).astype(np.uint8)
    np.testing.assert_array_equal(image[4 : 4 + len(attrs), 0, 0], expected)
    assert (image[4 : 4 + len(attrs)] == expected[:, None, None]).all()
    assert env.observation_space.contains(image)


def test_image_obs_layout_with_the_observed_reference() -> None:
    env = ImageObsWrapper(UniGenEnv(task="edit", seed=1, size=48, reference="observed"))
    image, _ = env.reset()
    raw = env.unwrapped.core.observations()
    assert image.shape == (7 + len(ATTRIBUTE_NAMES) + 4, 48, 48)
    assert env.stacker.channel_names()[3:7] == ["target_r", "target_g", "target_b", "mask"]
    np.testing.assert_array_equal(image[3:6], raw["target"][0])
    np.testing.assert_array_equal(image[6], raw["mask"][0, 0])
