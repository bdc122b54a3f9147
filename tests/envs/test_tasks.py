"""TaskSampler's argument checks (the env checks its own arguments before it builds one)."""

from __future__ import annotations

import numpy as np
import pytest

from unigen_sb3.data.shapes import load_shapes_spec
from unigen_sb3.envs.tasks import TaskSampler


@pytest.mark.parametrize("size", [40.7, "64", True, 12, 7])
def test_sampler_refuses_a_size_that_is_not_an_int_at_least_the_shapes_minimum(size) -> None:
    # 40.7 was truncated to 40 and "64" accepted; 12 failed only in sample(), and 7 with the
    # shapes package's minimum of another check (8).
    minimum = load_shapes_spec()["min_size"]
    with pytest.raises(ValueError, match=f"size={size!r} must be an int >= {minimum}"):
        TaskSampler("unified", size=size)


@pytest.mark.parametrize("fraction", ["0.5", None, 1.5, -0.1, True])
def test_sampler_refuses_an_edit_fraction_outside_zero_one(fraction) -> None:
    with pytest.raises(ValueError, match=f"edit_fraction={fraction!r} must be a number in"):
        TaskSampler("unified", edit_fraction=fraction)


def test_sampler_takes_numpy_numbers() -> None:
    minimum = load_shapes_spec()["min_size"]
    sampler = TaskSampler("edit", size=np.int64(minimum), edit_fraction=np.float32(0.25))
    task = sampler.sample(np.random.default_rng(0))
    assert sampler.size == minimum and task.target.shape == (3, minimum, minimum)
